import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { AppConfig } from '../config';
import { DeployerModule } from '../deployer';
import { PoolLimits } from './pool-limits';
import { PoolerService } from './pooler.service';

/** No transport: the pools of pre-deployed instances, used by both API contexts and the janitor. */
@Module({
  imports: [AdaptersModule, DeployerModule],
  providers: [
    PoolerService,
    // Spin-ups queue for as many slots as IaC operations may run at once.
    {
      provide: PoolLimits,
      inject: [AppConfig],
      useFactory: (c: AppConfig) => new PoolLimits(c.pool.maxSize, c.iac.concurrency),
    },
  ],
  exports: [PoolerService],
})
export class PoolerModule {}

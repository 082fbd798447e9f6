import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { AppConfig } from '../config';
import { DeployerService } from './deployer.service';
import { PoolLimits } from './pool-limits';
import { PoolerService } from './pooler.service';

/** No transport: pool management and the deployment of instances, used by both API contexts. */
@Module({
  imports: [AdaptersModule],
  providers: [
    DeployerService,
    PoolerService,
    // Spin-ups queue for as many slots as IaC operations may run at once.
    {
      provide: PoolLimits,
      inject: [AppConfig],
      useFactory: (c: AppConfig) => new PoolLimits(c.pool.maxSize, c.iac.concurrency),
    },
  ],
  exports: [DeployerService, PoolerService],
})
export class PoolerModule {}

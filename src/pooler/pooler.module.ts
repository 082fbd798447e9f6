import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { DeployerService } from './deployer.service';
import { PoolerService } from './pooler.service';

/** No transport: pool management and the deployment of instances, used by both API contexts. */
@Module({
  imports: [AdaptersModule],
  providers: [DeployerService, PoolerService],
  exports: [DeployerService, PoolerService],
})
export class PoolerModule {}

import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { DeployerModule } from '../deployer';
import { InstanceManagerModule } from '../instance-manager';
import { PoolerModule } from '../pooler';
import { JanitorScheduler } from './janitor.scheduler';
import { JanitorService } from './janitor.service';

@Module({
  imports: [AdaptersModule, DeployerModule, InstanceManagerModule, PoolerModule],
  providers: [JanitorService, JanitorScheduler],
  exports: [JanitorService],
})
export class JanitorModule {}

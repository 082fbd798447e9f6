import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { DeployerModule } from '../deployer';
import { PoolerModule } from '../pooler';
import { InstanceManagerService } from './instance-manager.service';
import { InstanceManagerGrpcController } from './transport/instance-manager.grpc.controller';
import { InstanceManagerHttpController } from './transport/instance-manager.http.controller';

@Module({
  imports: [AdaptersModule, DeployerModule, PoolerModule],
  controllers: [InstanceManagerGrpcController, InstanceManagerHttpController],
  providers: [InstanceManagerService],
  exports: [InstanceManagerService],
})
export class InstanceManagerModule {}

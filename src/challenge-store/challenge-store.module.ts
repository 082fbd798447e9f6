import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { DeployerModule } from '../deployer';
import { PoolerModule } from '../pooler';
import { ChallengeStoreService } from './challenge-store.service';
import { ChallengeStoreGrpcController } from './transport/challenge-store.grpc.controller';
import { ChallengeStoreHttpController } from './transport/challenge-store.http.controller';

@Module({
  imports: [AdaptersModule, DeployerModule, PoolerModule],
  controllers: [ChallengeStoreGrpcController, ChallengeStoreHttpController],
  providers: [ChallengeStoreService],
  exports: [ChallengeStoreService],
})
export class ChallengeStoreModule {}

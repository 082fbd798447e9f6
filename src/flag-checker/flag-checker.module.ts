import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { FlagCheckerService } from './flag-checker.service';
import { FlagCheckerGrpcController } from './transport/flag-checker.grpc.controller';
import { FlagCheckerHttpController } from './transport/flag-checker.http.controller';

@Module({
  imports: [AdaptersModule],
  controllers: [FlagCheckerGrpcController, FlagCheckerHttpController],
  providers: [FlagCheckerService],
  exports: [FlagCheckerService],
})
export class FlagCheckerModule {}

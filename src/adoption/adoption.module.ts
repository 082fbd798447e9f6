import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { DeployerModule } from '../deployer';
import { AdoptionService } from './adoption.service';

/** No transport: takes over what an upstream chall-manager (Go) left in DIR. */
@Module({
  imports: [AdaptersModule, DeployerModule],
  providers: [AdoptionService],
  exports: [AdoptionService],
})
export class AdoptionModule {}

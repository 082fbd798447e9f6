import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { PoolerModule } from '../pooler';
import { AdoptionService } from './adoption.service';

/** No transport: takes over what an upstream chall-manager (Go) left in DIR. */
@Module({
  imports: [AdaptersModule, PoolerModule],
  providers: [AdoptionService],
  exports: [AdoptionService],
})
export class AdoptionModule {}

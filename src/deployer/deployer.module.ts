import { Module } from '@nestjs/common';
import { AdaptersModule } from '../adapters/adapters.module';
import { DeployerService } from './deployer.service';

/** No transport: deploys, redeploys and destroys the stacks of instances for every context. */
@Module({
  imports: [AdaptersModule],
  providers: [DeployerService],
  exports: [DeployerService],
})
export class DeployerModule {}

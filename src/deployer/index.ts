export { DeployerModule } from './deployer.module';
export { DeployerService } from './deployer.service';

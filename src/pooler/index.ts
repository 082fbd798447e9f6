export { DeployerService, mergedAdditional, newIdentity } from './deployer.service';
export { poolDelta } from './pool-delta';
export { PoolLimits } from './pool-limits';
export { PoolerModule } from './pooler.module';
export { PoolerService } from './pooler.service';

export { poolDelta } from './pool-delta';
export { PoolerModule } from './pooler.module';
export { PoolerService } from './pooler.service';

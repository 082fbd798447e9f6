export { PoolerModule } from './pooler.module';

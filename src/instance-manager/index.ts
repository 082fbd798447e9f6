export { InstanceManagerModule } from './instance-manager.module';

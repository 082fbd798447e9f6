export { InstanceManagerModule } from './instance-manager.module';
export { InstanceManagerService } from './instance-manager.service';

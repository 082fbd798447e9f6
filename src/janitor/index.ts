export { JanitorModule } from './janitor.module';
export { JanitorService, type SweepReport } from './janitor.service';

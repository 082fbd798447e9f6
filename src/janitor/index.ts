export { JanitorModule } from './janitor.module';

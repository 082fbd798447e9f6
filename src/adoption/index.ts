export { AdoptionModule } from './adoption.module';
export { AdoptionService, type AdoptionSummary } from './adoption.service';

export { AdoptionModule } from './adoption.module';
export { AdoptionService } from './adoption.service';

export { FlagCheckerModule } from './flag-checker.module';
export { FlagCheckerService } from './flag-checker.service';
export type { FlagCheckInput, FlagCheckResult, FlagSharing } from './flag-checker.types';

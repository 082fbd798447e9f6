export { ChallengeStoreModule } from './challenge-store.module';
export { ChallengeStoreService } from './challenge-store.service';
export type * from './challenge-store.types';

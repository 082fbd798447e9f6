export { ChallengeStoreModule } from './challenge-store.module';

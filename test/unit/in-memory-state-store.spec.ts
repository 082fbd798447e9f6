import { stateStoreContract } from '../contract/state-store.contract';
import { InMemoryStateStore } from '../support/fakes/in-memory-state-store';

stateStoreContract('InMemoryStateStore', () =>
  Promise.resolve({ store: new InMemoryStateStore(), cleanup: () => Promise.resolve() }),
);

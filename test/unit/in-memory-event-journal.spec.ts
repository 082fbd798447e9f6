import { eventJournalContract } from '../contract/event-journal.contract';
import { InMemoryEventJournal } from '../support/fakes/in-memory-event-journal';
import { FixedClock } from '../support/fakes/fixed-clock';

// One journal stands for the shared storage: every "replica" opens the same one.
eventJournalContract('InMemoryEventJournal', () => {
  const clock = new FixedClock();
  let journal: InMemoryEventJournal | undefined;
  return Promise.resolve({
    clock,
    open: (size?: number) => Promise.resolve((journal ??= new InMemoryEventJournal(clock, size))),
    cleanup: () => Promise.resolve(),
  });
});

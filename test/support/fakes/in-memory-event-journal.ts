import {
  matchesFilter,
  type EventFilter,
  type EventSubject,
  type EventType,
  type LifecycleEvent,
} from '../../../src/shared/domain';
import type { Clock } from '../../../src/shared/ports/clock.port';
import {
  EventJournal,
  EventPublisher,
  type EventPage,
} from '../../../src/shared/ports/event-journal.port';

/** The event journal in memory, unbounded unless `size` says: what services published, in order. */
export class InMemoryEventJournal implements EventPublisher, EventJournal {
  readonly events: LifecycleEvent[] = [];
  private readonly once = new Map<string, string>();
  private readonly cursors = new Map<string, number>();
  private readonly waiters = new Set<{ cursor: number; wake: () => void }>();
  /** Makes every publish fail (it must never fail the caller's operation). */
  failing = false;

  constructor(
    private readonly clock: Clock,
    private readonly size = Number.POSITIVE_INFINITY,
  ) {}

  /** `type` and ids of every event, for compact assertions. */
  published(): (EventSubject & { type: EventType })[] {
    return this.events.map(({ type, challengeId, sourceId, identity, sharedFrom }) => ({
      type,
      challengeId,
      ...(sourceId === undefined ? {} : { sourceId }),
      ...(identity === undefined ? {} : { identity }),
      ...(sharedFrom === undefined ? {} : { sharedFrom }),
    }));
  }

  publish(
    type: EventType,
    subject: EventSubject,
    once?: { key: string; value: string; keepUntil: Date },
  ): Promise<LifecycleEvent | undefined> {
    if (this.failing) return Promise.resolve(undefined);
    if (once && this.once.get(once.key) === once.value) return Promise.resolve(undefined);
    if (once) this.once.set(once.key, once.value);
    const head = this.events.at(-1)?.id ?? 0;
    const event: LifecycleEvent = { ...subject, id: head + 1, time: this.clock.now(), type };
    this.events.push(event);
    while (this.events.length > this.size) this.events.shift();
    for (const waiter of [...this.waiters]) if (event.id > waiter.cursor) waiter.wake();
    return Promise.resolve(event);
  }

  head(): Promise<number> {
    return Promise.resolve(this.events.at(-1)?.id ?? 0);
  }

  readAfter(cursor: number, filter: EventFilter, limit = 500): Promise<EventPage> {
    const after = this.events.filter((e) => e.id > cursor).slice(0, limit);
    const oldest = this.events[0]?.id;
    return Promise.resolve({
      events: after.filter((e) => matchesFilter(e, filter)),
      cursor: after.at(-1)?.id ?? cursor,
      missed: oldest !== undefined && cursor + 1 < oldest,
    });
  }

  waitAfter(cursor: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || (this.events.at(-1)?.id ?? 0) > cursor) return resolve();
      const waiter = {
        cursor,
        wake: (): void => {
          this.waiters.delete(waiter);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal.addEventListener('abort', waiter.wake, { once: true });
    });
  }

  loadCursor(name: string): Promise<number | undefined> {
    return Promise.resolve(this.cursors.get(name));
  }

  saveCursor(name: string, id: number): Promise<void> {
    this.cursors.set(name, id);
    return Promise.resolve();
  }
}

import type { EventFilter, EventSubject, EventType, LifecycleEvent } from '../domain/event';

/**
 * Publishes lifecycle events (what the services call once a change is written).
 *
 * - `publish` never rejects: an event that cannot be written is logged and lost, and the
 *   operation that caused it goes on (its state is already written).
 * - Ids are monotonic across every replica sharing the journal. Within one process they follow
 *   the order of the `publish` calls, awaited or not: a caller may make several calls before
 *   awaiting any (e.g. with `Promise.all`) and its events keep that order (and may be written
 *   together, for the cost of one).
 * - `once`: the event is published only if none was published before with the same `key` and
 *   `value` (the instance's identity and `until` of `instance.expiring`, so replicas scanning the
 *   same instances emit it once). The mark is forgotten after `keepUntil`.
 */
export abstract class EventPublisher {
  abstract publish(
    type: EventType,
    subject: EventSubject,
    once?: { key: string; value: string; keepUntil: Date },
  ): Promise<LifecycleEvent | undefined>;
}

/** What {@link EventJournal.readAfter} found. */
export interface EventPage {
  /** Matching events after the cursor, oldest first. */
  events: LifecycleEvent[];
  /**
   * Where to read next: the id of the last event looked at (matching or not), so a filtered
   * reader does not read the same events again.
   */
  cursor: number;
  /** Events after the cursor were pruned (the journal keeps a bounded number): a gap. */
  missed: boolean;
}

/**
 * The bounded journal of events, shared by every replica (it lives with the state). Readers of
 * any replica see every event, in id order.
 */
export abstract class EventJournal {
  /** The id of the last event (0 when none was ever published). */
  abstract head(): Promise<number>;
  /** Up to `limit` events with an id above `cursor`, matching `filter`. */
  abstract readAfter(cursor: number, filter: EventFilter, limit?: number): Promise<EventPage>;
  /**
   * Resolves once an event with an id above `cursor` exists (at once if one does), including
   * events other replicas publish, or when `signal` aborts.
   */
  abstract waitAfter(cursor: number, signal: AbortSignal): Promise<void>;
  /** A reader's durable position (the webhook deliverer's), shared by replicas; 0 if none. */
  abstract loadCursor(name: string): Promise<number | undefined>;
  abstract saveCursor(name: string, id: number): Promise<void>;
}

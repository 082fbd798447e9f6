/** What changed: every lifecycle event has one of these types. */
export const EVENT_TYPES = [
  'challenge.created',
  'challenge.updated',
  'challenge.deleted',
  'instance.created',
  'instance.ready',
  'instance.renewed',
  'instance.expiring',
  'instance.deleted',
  'instance.failed',
  'pool.low',
  'pool.exhausted',
  'flag.shared',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/**
 * The record an event is about, by ids only: an event is seen by every watcher and webhook, so
 * it never carries flags, connection info or additional values.
 */
export interface EventSubject {
  challengeId: string;
  /** Instance events of a claimed instance. */
  sourceId?: string;
  /** Instance events, once the instance has one. */
  identity?: string;
  /**
   * `flag.shared`: the source whose instance had the flag that `sourceId` submitted (a source id,
   * not a flag).
   */
  sharedFrom?: string;
}

/** One change of a challenge or an instance, as the journal keeps it. */
export interface LifecycleEvent extends EventSubject {
  /** Monotonic across replicas: the journal's sequence number, from 1. */
  id: number;
  time: Date;
  type: EventType;
}

/** Which events a watcher wants; an absent field matches every value. */
export interface EventFilter {
  challengeId?: string;
  sourceId?: string;
}

export function matchesFilter(event: EventSubject, filter: EventFilter): boolean {
  return (
    (filter.challengeId === undefined || event.challengeId === filter.challengeId) &&
    (filter.sourceId === undefined || event.sourceId === filter.sourceId)
  );
}

/** The ids an instance's events carry: never its flags, connection info or additional. */
export function subjectOf(instance: {
  challengeId: string;
  sourceId?: string;
  identity: string;
}): EventSubject {
  const subject: EventSubject = { challengeId: instance.challengeId, identity: instance.identity };
  if (instance.sourceId !== undefined) subject.sourceId = instance.sourceId;
  return subject;
}

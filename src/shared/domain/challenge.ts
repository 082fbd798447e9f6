/**
 * A challenge: a scenario (OCI reference of a Pulumi program) and the rules of its instances.
 * `timeoutMs` and `until` drive expiry; `min`/`max` drive the pool (0 = no pool / no maximum).
 */
export interface Challenge {
  id: string;
  scenario: string;
  /** Lifetime granted on creation and on each renewal; absent = no renewal, no timeout. */
  timeoutMs?: number;
  /** Hard end of the challenge; absent = never. */
  until?: Date;
  additional: Record<string, string>;
  min: number;
  max: number;
  /**
   * The manifest digest `scenario` resolved to when last validated; lets an update see a tag
   * re-pushed since (upstream cached per process and never saw it). Absent in upstream records.
   */
  digest?: string;
}

/**
 * The last instant a google.protobuf.Timestamp can carry, to the millisecond
 * (9999-12-31T23:59:59.999Z): an `until` past it could be sent on neither transport.
 */
export const MAX_TIMESTAMP_MS = 253_402_300_799_999;

/**
 * When an instance created or renewed at `now` expires, before any bound.
 * upstream: ctfer-io/chall-manager pkg/fs/instance.go ComputeUntil
 *
 * | until | timeout | result                     |
 * | ----- | ------- | -------------------------- |
 * | -     | -       | never (undefined)          |
 * | -     | set     | now + timeout              |
 * | set   | -       | until                      |
 * | set   | set     | min(now + timeout, until)  |
 */
function untilMs(challenge: Pick<Challenge, 'until' | 'timeoutMs'>, now: Date): number | undefined {
  const byTimeout =
    challenge.timeoutMs === undefined ? undefined : now.getTime() + challenge.timeoutMs;
  if (challenge.until === undefined) return byTimeout;
  if (byTimeout === undefined) return challenge.until.getTime();
  return Math.min(byTimeout, challenge.until.getTime());
}

/**
 * When an instance created or renewed at `now` expires (see {@link untilMs}). Never past
 * {@link MAX_TIMESTAMP_MS}: requests that would go past it are refused
 * ({@link untilOverflows}); the bound only keeps representable what a record stored before
 * timeouts were checked gives, or a timeout that reaches the edge while an operation runs.
 */
export function computeUntil(
  challenge: Pick<Challenge, 'until' | 'timeoutMs'>,
  now: Date,
): Date | undefined {
  const ms = untilMs(challenge, now);
  return ms === undefined ? undefined : new Date(Math.min(ms, MAX_TIMESTAMP_MS));
}

/** Whether an instance created or renewed at `now` would expire past the last Timestamp. */
export function untilOverflows(
  challenge: Pick<Challenge, 'until' | 'timeoutMs'>,
  now: Date,
): boolean {
  const ms = untilMs(challenge, now);
  return ms !== undefined && ms > MAX_TIMESTAMP_MS;
}

/** A challenge whose `until` has passed accepts no new instances and keeps no pool. */
export function isChallengeExpired(challenge: Pick<Challenge, 'until'>, now: Date): boolean {
  return challenge.until !== undefined && now.getTime() > challenge.until.getTime();
}

/** How existing instances follow a changed scenario or additional (upstream's update strategies: update_in_place, blue_green, recreate). */
export type UpdateStrategy = 'update_in_place' | 'blue_green' | 'recreate';

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
 * When an instance created or renewed at `now` expires.
 * upstream: ctfer-io/chall-manager pkg/fs/instance.go ComputeUntil
 *
 * | until | timeout | result                     |
 * | ----- | ------- | -------------------------- |
 * | -     | -       | never (undefined)          |
 * | -     | set     | now + timeout              |
 * | set   | -       | until                      |
 * | set   | set     | min(now + timeout, until)  |
 */
export function computeUntil(
  challenge: Pick<Challenge, 'until' | 'timeoutMs'>,
  now: Date,
): Date | undefined {
  const byTimeout =
    challenge.timeoutMs === undefined ? undefined : new Date(now.getTime() + challenge.timeoutMs);
  if (challenge.until === undefined) return byTimeout;
  if (byTimeout === undefined) return new Date(challenge.until.getTime());
  return byTimeout.getTime() < challenge.until.getTime()
    ? byTimeout
    : new Date(challenge.until.getTime());
}

/** A challenge whose `until` has passed accepts no new instances and keeps no pool. */
export function isChallengeExpired(challenge: Pick<Challenge, 'until'>, now: Date): boolean {
  return challenge.until !== undefined && now.getTime() > challenge.until.getTime();
}

/** How existing instances follow a changed scenario or additional (upstream §5.8). */
export type UpdateStrategy = 'update_in_place' | 'blue_green' | 'recreate';

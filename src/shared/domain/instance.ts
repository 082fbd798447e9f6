/**
 * An instance: one deployed stack of a challenge's scenario, known by its random identity.
 * Claimed by a source (player or team), or pooled (no source yet) waiting to be claimed.
 */
export interface Instance {
  challengeId: string;
  /** 16 lowercase hex characters; names the stack. Never shown to players. */
  identity: string;
  /** Absent while pooled. */
  sourceId?: string;
  since: Date;
  lastRenew: Date;
  /** Absent = never expires. */
  until?: Date;
  connectionInfo: string;
  flags: string[];
  /** The instance-level additional only (not merged with the challenge's). */
  additional: Record<string, string>;
  /**
   * A redeployment in progress, recorded before it starts so that a crash midway is finished or
   * undone by the next sweep (a `recreate` between its destroy and its up; a `blue_green` towards
   * stack `identity`).
   */
  pending?: PendingUpdate;
  /**
   * The scenario's readiness probes (its `readiness` output, see readiness.ts), kept so that a
   * claim can check a pooled instance still answers without asking the IaC engine. Absent: the
   * scenario declares none.
   */
  readiness?: string[];
}

export type PendingUpdate =
  { operation: 'recreate' } | { operation: 'blue_green'; identity: string };

/** An instance a source holds: its `sourceId` is set. */
export type Claimed<T extends Pick<Instance, 'sourceId'> = Instance> = T & { sourceId: string };

/** Held by a source (player or team): the API lists it, and it may expire. */
export function isClaimed<T extends Pick<Instance, 'sourceId'>>(
  instance: T,
): instance is Claimed<T> {
  return instance.sourceId !== undefined;
}

/** In the pool: deployed ahead for a source to claim; the API never lists it, it never expires. */
export function isPooled(instance: Pick<Instance, 'sourceId'>): boolean {
  return instance.sourceId === undefined;
}

/** An identity is 16 lowercase hex characters (upstream: sha256 of random bytes, first 16). */
export const IDENTITY_PATTERN = /^[0-9a-f]{16}$/;

/** upstream: the deprecated `flag` is set only when there is exactly one flag. */
export function singleFlag(instance: Pick<Instance, 'flags'>): string | undefined {
  return instance.flags.length === 1 ? instance.flags[0] : undefined;
}

/** Whether the janitor may delete the instance at `now`. */
export function isInstanceExpired(instance: Pick<Instance, 'until'>, now: Date): boolean {
  return instance.until !== undefined && now.getTime() > instance.until.getTime();
}

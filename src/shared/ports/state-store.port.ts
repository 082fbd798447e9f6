import type { Challenge } from '../domain/challenge';
import type { Claimed, Instance } from '../domain/instance';

/** See {@link StateStore.poolState}. */
export interface PoolState {
  /** Identities of pooled instances, sorted. */
  pooled: string[];
  claimed: number;
}

/** A fresh creation in progress for one source, shown to every replica (see beginCreation). */
export interface CreationMark {
  /** Removes the mark; never throws (a mark left behind goes stale on its own). */
  end(): Promise<void>;
}

/** What a claim saves with it (see {@link StateStore.claim}). */
export interface ClaimSave {
  /** The instance as its claimant's: `sourceId` is the claim's. */
  record: Claimed<Instance>;
  /**
   * Made durable once the claim is won, beside the record's last flush (the flag record); the
   * claim resolves once both are, and rejects when this does.
   */
  alongside?: () => Promise<void>;
}

/**
 * Durable records of challenges and instances, shared by all replicas (upstream `DIR`).
 *
 * - Every write is atomic: a reader sees the old record or the new one, never a torn one.
 * - `claim` is atomic: of concurrent claims of one pooled instance, exactly one succeeds.
 * - Loads of missing records return `undefined`; deletes of missing records succeed.
 * - Records are copies: mutating a returned or saved object never changes what is stored.
 * - Instance methods throw a plain Error when `identity` does not match `IDENTITY_PATTERN`
 *   (identities name directories; nothing may escape the store).
 * - No locking beyond `claim`: callers serialise writers of one record with `DistributedLock`.
 */
export abstract class StateStore {
  abstract loadChallenge(id: string): Promise<Challenge | undefined>;
  /** Creates or replaces the challenge record. */
  abstract saveChallenge(challenge: Challenge): Promise<void>;
  /** Removes the challenge record and every instance record of the challenge. */
  abstract deleteChallenge(id: string): Promise<void>;
  /** Every readable challenge, in no promised order; unreadable entries are skipped. */
  abstract listChallenges(): Promise<Challenge[]>;

  /** `sourceId` is set when the instance is claimed, absent while pooled. */
  abstract loadInstance(challengeId: string, identity: string): Promise<Instance | undefined>;
  /**
   * Creates or replaces the instance record. A set `sourceId` records the claim; an absent
   * `sourceId` never removes an existing claim (only `deleteInstance` does), so a stale pooled
   * copy saved after a concurrent `claim` cannot hand the instance to a second source.
   */
  abstract saveInstance(instance: Instance): Promise<void>;
  abstract deleteInstance(challengeId: string, identity: string): Promise<void>;
  /** Claimed and pooled instances of a challenge, in no promised order; [] if none. */
  abstract listInstances(challengeId: string): Promise<Instance[]>;
  /**
   * What `listInstances` gives for each of `challengeIds`, in their order, read together: a
   * listing of many challenges (QueryChallenge) would otherwise pay a directory read per
   * challenge in turn.
   */
  abstract listInstancesOf(challengeIds: readonly string[]): Promise<Instance[][]>;
  /**
   * The identities of the pooled instances of a challenge and the number of claimed ones,
   * without reading the records (the claim path runs it on every pooled claim, so it must not
   * cost a parse per instance). Unlike `listInstances`, a pooled instance whose record is
   * unreadable is listed: load a candidate before claiming it.
   */
  abstract poolState(challengeId: string): Promise<PoolState>;
  /** The instance claimed by `sourceId`, if any. */
  abstract findClaimed(challengeId: string, sourceId: string): Promise<Instance | undefined>;
  /**
   * The instances claimed by `sourceId` across challenges: for each challenge `listChallenges`
   * lists, in its order, the one `findClaimed` finds, if any.
   */
  abstract findClaimedOfSource(sourceId: string): Promise<Instance[]>;
  /**
   * Gives pooled instance `identity` to `sourceId`; false if someone claimed it first or the
   * instance does not exist. Does not check that `sourceId` has no other instance (the
   * caller's job, under the source lock). The claim is seen by every reader at once, but is
   * durable (survives a crash of the host) only once the claimed record is saved: a claim is
   * always followed by that save before anyone is told, and one lost in a crash before it
   * leaves the instance pooled, as if the claim had not been made.
   *
   * With `save`, that save is part of the claim: the record is written and flushed beside the
   * claim, put in place only once the claim is won (a lost claim changes no record), and
   * durable when this resolves true, in fewer flushes than a claim then a save.
   */
  abstract claim(
    challengeId: string,
    identity: string,
    sourceId: string,
    save?: ClaimSave,
  ): Promise<boolean>;

  /**
   * The Pulumi deployment an upstream chall-manager (Go) stored in the instance record (its
   * `state` field), or undefined when the record is ours (or missing). Such a stack is not in
   * our IaC backend until it is adopted (see `DeployerService.adoptIfUpstream`).
   */
  abstract upstreamState(challengeId: string, identity: string): Promise<unknown>;
  /**
   * Rewrites the instance record in our format, without upstream's `state`: the last step of
   * an adoption, once the state is in our backend. A record without one is left as it is.
   * Until then `saveInstance` keeps the `state` it finds, so no write loses it.
   */
  abstract dropUpstreamState(challengeId: string, identity: string): Promise<void>;

  /**
   * Marks that a fresh creation for `sourceId` runs (its `up` takes seconds), so that a second
   * CreateInstance of that source on any replica answers at once instead of waiting for the
   * first behind the source lock. The mark is kept alive while it lasts; one left by a crashed
   * replica goes stale within seconds. A hint, not a record: nothing is flushed.
   */
  abstract beginCreation(challengeId: string, sourceId: string): Promise<CreationMark>;
  /** Whether a live creation mark of `sourceId` exists (see `beginCreation`). */
  abstract creationUnderway(challengeId: string, sourceId: string): Promise<boolean>;
}

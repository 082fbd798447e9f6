import type { Challenge } from '../domain/challenge';
import type { Instance } from '../domain/instance';

/**
 * Durable records of challenges and instances, shared by all replicas (upstream `DIR`).
 *
 * - Every write is atomic: a reader sees the old record or the new one, never a torn one.
 * - `claim` is atomic: of concurrent claims of one pooled instance, exactly one succeeds.
 * - Loads of missing records return `undefined`; deletes of missing records succeed.
 */
export abstract class StateStore {
  abstract loadChallenge(id: string): Promise<Challenge | undefined>;
  abstract saveChallenge(challenge: Challenge): Promise<void>;
  abstract deleteChallenge(id: string): Promise<void>;
  abstract listChallenges(): Promise<Challenge[]>;

  abstract loadInstance(challengeId: string, identity: string): Promise<Instance | undefined>;
  abstract saveInstance(instance: Instance): Promise<void>;
  abstract deleteInstance(challengeId: string, identity: string): Promise<void>;
  /** Claimed and pooled instances of a challenge. */
  abstract listInstances(challengeId: string): Promise<Instance[]>;
  /** The instance claimed by `sourceId`, if any. */
  abstract findClaimed(challengeId: string, sourceId: string): Promise<Instance | undefined>;
  /** Gives pooled instance `identity` to `sourceId`; false if someone claimed it first. */
  abstract claim(challengeId: string, identity: string, sourceId: string): Promise<boolean>;
}

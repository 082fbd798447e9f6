import type { Claimed, Instance } from '../domain/instance';

/** A write flushed aside, put in place by `commit` (durable when it resolves) or dropped. */
export interface StagedWrite {
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/**
 * What remains of the flags every claimed instance had: a keyed hash of each (never the flag),
 * with the challenge, the source and the instance's lifetime, kept for a retention period after
 * the instance is deleted, so a flag found just before an instance expired still counts. Shared
 * by every replica (records live under DIR).
 *
 * - `record` is called before each save of a claimed instance; flags a redeployment dropped stay
 *   valid, as if their instance had been deleted then.
 * - `markDeleted` starts the retention period of an instance's flags; unknown instances are a no-op.
 * - `sourcesOf` compares in constant time per stored hash, whatever matches.
 */
export abstract class FlagRecords {
  /** `stage` then its commit. */
  async record(instance: Claimed<Instance>, at: Date): Promise<void> {
    await (await this.stage(instance, at)).commit();
  }
  /**
   * The record `record` would write, written and flushed but not in place: committed once the
   * save it goes with is decided (a claim), discarded otherwise.
   */
  abstract stage(instance: Claimed<Instance>, at: Date): Promise<StagedWrite>;
  abstract markDeleted(challengeId: string, identity: string, at: Date): Promise<void>;
  /** Removes every record of the challenge (DeleteChallenge). */
  abstract removeChallenge(challengeId: string): Promise<void>;
  /** The sources of the challenge one of whose instances had `flag`, within retention at `now`. */
  abstract sourcesOf(challengeId: string, flag: string, now: Date): Promise<string[]>;
  /**
   * Removes what is past retention at `now`, and marks deleted the records of instances that no
   * longer exist (`isLive` says) yet were never marked (a crash between the two writes).
   * Returns how many records it removed.
   */
  abstract purge(
    now: Date,
    isLive: (challengeId: string, identity: string) => Promise<boolean>,
  ): Promise<number>;
}

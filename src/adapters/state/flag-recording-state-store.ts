import { Logger, type OnModuleInit } from '@nestjs/common';
import type { Challenge } from '../../shared/domain/challenge';
import { isClaimed, type Instance } from '../../shared/domain/instance';
import type { Clock } from '../../shared/ports/clock.port';
import type { FlagRecords } from '../../shared/ports/flag-records.port';
import {
  StateStore,
  type ClaimSave,
  type CreationMark,
  type PoolState,
} from '../../shared/ports/state-store.port';

/**
 * The state store, keeping the flag records in step with the instance records: every save of a
 * claimed instance (create, claim from the pool, renewal, redeployment) records its flags beside it,
 * every delete (API, janitor, blue-green move) starts their retention, and a deleted challenge
 * takes its flag records along. Being the one path of every instance write, no caller can forget.
 */
export class FlagRecordingStateStore extends StateStore implements OnModuleInit {
  private readonly logger = new Logger(FlagRecordingStateStore.name);

  constructor(
    private readonly inner: StateStore,
    private readonly flags: FlagRecords,
    private readonly clock: Clock,
  ) {
    super();
  }

  /** The wrapped store's start-up work (Nest only calls the hooks of the bound provider). */
  async onModuleInit(): Promise<void> {
    await (this.inner as Partial<OnModuleInit>).onModuleInit?.();
  }

  loadChallenge(id: string): Promise<Challenge | undefined> {
    return this.inner.loadChallenge(id);
  }

  saveChallenge(challenge: Challenge): Promise<void> {
    return this.inner.saveChallenge(challenge);
  }

  /** The instance records go first: a failure in between leaves records the janitor purges. */
  async deleteChallenge(id: string): Promise<void> {
    await this.inner.deleteChallenge(id);
    await this.flags.removeChallenge(id);
  }

  listChallenges(): Promise<Challenge[]> {
    return this.inner.listChallenges();
  }

  loadInstance(challengeId: string, identity: string): Promise<Instance | undefined> {
    return this.inner.loadInstance(challengeId, identity);
  }

  /**
   * The flag record and the instance record are written side by side (each waits for its own
   * flushes; one after the other, a claim waited for both in a row), and the save resolves only
   * once both are durable: the caller hands the flags out after that, so a player never holds a
   * flag the checker does not know. A record whose instance save fails is marked deleted by the
   * janitor's purge; a failed flag record fails the save, after the instance record is written.
   */
  async saveInstance(instance: Instance): Promise<void> {
    const [recorded, saved] = await Promise.allSettled([
      isClaimed(instance) ? this.flags.record(instance, this.clock.now()) : Promise.resolve(),
      this.inner.saveInstance(instance),
    ]);
    if (saved.status === 'rejected') throw saved.reason;
    if (recorded.status === 'rejected') throw recorded.reason;
  }

  /**
   * The instance is gone whatever happens to its flag record: a failed mark is logged, and the
   * janitor's purge marks the record later.
   */
  async deleteInstance(challengeId: string, identity: string): Promise<void> {
    await this.inner.deleteInstance(challengeId, identity);
    await this.flags.markDeleted(challengeId, identity, this.clock.now()).catch((err: unknown) => {
      this.logger.warn(
        `marking the flags of instance ${identity} of challenge ${challengeId} deleted: ${String(err)}`,
      );
    });
  }

  listInstances(challengeId: string): Promise<Instance[]> {
    return this.inner.listInstances(challengeId);
  }

  listInstancesOf(challengeIds: readonly string[]): Promise<Instance[][]> {
    return this.inner.listInstancesOf(challengeIds);
  }

  poolState(challengeId: string): Promise<PoolState> {
    return this.inner.poolState(challengeId);
  }

  findClaimed(challengeId: string, sourceId: string): Promise<Instance | undefined> {
    return this.inner.findClaimed(challengeId, sourceId);
  }

  findClaimedOfSource(sourceId: string): Promise<Instance[]> {
    return this.inner.findClaimedOfSource(sourceId);
  }

  /**
   * A claim that saves its record writes the flag record as the record: flushed beside the
   * claim, put in place only once the claim is won (a lost claim must not overwrite the
   * winner's), and durable before the claim resolves.
   */
  async claim(
    challengeId: string,
    identity: string,
    sourceId: string,
    save?: ClaimSave,
  ): Promise<boolean> {
    if (save === undefined) return this.inner.claim(challengeId, identity, sourceId);
    const staging = this.flags.stage(save.record, this.clock.now());
    // Settled here; its failure is the claim's once won (as a save's), and nothing if lost.
    const staged = staging.then(
      (write) => ({ write }),
      (error: unknown) => ({ error }),
    );
    let won = false;
    try {
      won = await this.inner.claim(challengeId, identity, sourceId, {
        record: save.record,
        alongside: async () => {
          const flag = await staged;
          if ('error' in flag) throw flag.error;
          await Promise.all([flag.write.commit(), save.alongside?.()]);
        },
      });
    } finally {
      if (!won) {
        const flag = await staged;
        if ('write' in flag) await flag.write.discard();
      }
    }
    return won;
  }

  upstreamState(challengeId: string, identity: string): Promise<unknown> {
    return this.inner.upstreamState(challengeId, identity);
  }

  dropUpstreamState(challengeId: string, identity: string): Promise<void> {
    return this.inner.dropUpstreamState(challengeId, identity);
  }

  beginCreation(challengeId: string, sourceId: string): Promise<CreationMark> {
    return this.inner.beginCreation(challengeId, sourceId);
  }

  creationUnderway(challengeId: string, sourceId: string): Promise<boolean> {
    return this.inner.creationUnderway(challengeId, sourceId);
  }
}

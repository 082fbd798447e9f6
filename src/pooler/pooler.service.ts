import { randomInt } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { DeployerService } from '../deployer';
import {
  computeUntil,
  isChallengeExpired,
  isClaimed,
  isPooled,
  lockKeys,
  type Challenge,
  type Claimed,
  type Instance,
} from '../shared/domain';
import { BackgroundTasks } from '../shared/background-tasks';
import { ConcurrencyGate, inBackground } from '../shared/concurrency-gate';
import { ChallengeNotFoundError, InstanceNotFoundError } from '../shared/errors';
import {
  Clock,
  DistributedLock,
  ReadinessProbe,
  EventPublisher,
  StateStore,
  type FetchedScenario,
} from '../shared/ports';
import { PoolLimits } from './pool-limits';
import { poolDelta, shouldRefillAfterClaim, shouldRefillAfterDelete } from './pool-delta';

/** A pooled instance given to a source; `finished` when the claim already saved it as theirs. */
export interface PoolClaim {
  instance: Claimed;
  finished: boolean;
}

/** Whether the instance's scenario declared readiness probes. */
function hasProbes(instance: Instance): instance is Instance & { readiness: string[] } {
  return instance.readiness !== undefined && instance.readiness.length > 0;
}

/** The pooled `instance` as `sourceId`'s from `now`: expiry from now, the source's additional. */
function asClaimedBy(
  challenge: Challenge,
  instance: Instance,
  sourceId: string,
  additional: Record<string, string>,
  now: Date,
): Claimed {
  const claimed: Claimed = { ...instance, sourceId, lastRenew: now, additional: { ...additional } };
  const until = computeUntil(challenge, now);
  if (until) claimed.until = until;
  return claimed;
}

/**
 * Pre-deployed (pooled) instances: spin-ups, claims and resizes.
 * Pooled instances have no source, never appear in the API and never expire while pooled.
 */
@Injectable()
export class PoolerService {
  private readonly logger = new Logger(PoolerService.name);
  /** Spin-ups started by this process and not finished, per challenge. */
  private readonly inFlight = new Map<string, number>();
  /** Pooled instances a claim of this process is trying to take (identities are unique). */
  private readonly claiming = new Set<string>();
  /** Pooled instances this process found not answering and is removing (never handed out). */
  private readonly removing = new Set<string>();
  /** The line spin-ups wait in: a few at a time, challenges taking turns. */
  private readonly queue: ConcurrencyGate;

  constructor(
    private readonly state: StateStore,
    private readonly lock: DistributedLock,
    private readonly clock: Clock,
    private readonly tasks: BackgroundTasks,
    private readonly deployer: DeployerService,
    private readonly limits: PoolLimits,
    private readonly readiness: ReadinessProbe,
    private readonly events: EventPublisher,
  ) {
    this.queue = new ConcurrencyGate(limits.spinUpConcurrency);
  }

  /** The largest pool (`min`) a challenge may ask for. */
  get maxSize(): number {
    return this.limits.maxSize;
  }

  /**
   * Queues `count` spin-ups in the background, never more than the largest pool per challenge.
   * Each one is admitted only if, once deployed, the challenge still exists, has not expired,
   * and the pool is still under its target: the pool never exceeds what the bounds allow,
   * whatever the interleaving.
   */
  spinUp(challengeId: string, count: number): void {
    const room = this.limits.maxSize - (this.inFlight.get(challengeId) ?? 0);
    for (let i = 0; i < Math.min(count, room); i++) {
      this.inFlight.set(challengeId, (this.inFlight.get(challengeId) ?? 0) + 1);
      this.tasks.run(`pool spin-up of challenge ${challengeId}`, async (signal) => {
        try {
          // Background work: player requests go first wherever IaC work waits in line.
          await inBackground(() => this.withRetries(challengeId, signal));
        } finally {
          const left = (this.inFlight.get(challengeId) ?? 1) - 1;
          if (left > 0) this.inFlight.set(challengeId, left);
          else this.inFlight.delete(challengeId);
        }
      });
    }
  }

  /**
   * Pauses between the attempts of a failed spin-up (a registry or provider hiccup should not
   * leave the pool short until the next janitor sweep).
   */
  retryDelaysMs: readonly number[] = [2_000, 10_000];

  private async withRetries(challengeId: string, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // Each attempt waits its turn; a retry's pause holds no place in the line.
        await this.queue.run({ key: challengeId, priority: 'background', signal }, () =>
          this.spinUpOne(challengeId, signal),
        );
        return;
      } catch (err) {
        const delay = this.retryDelaysMs[attempt];
        if (delay === undefined || signal.aborted || err instanceof ChallengeNotFoundError)
          throw err;
        this.logger.warn(
          `spin-up for challenge ${challengeId} failed (attempt ${attempt + 1}), retrying in ${delay} ms: ${String(err)}`,
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
        if (signal.aborted) throw err;
      }
    }
  }

  private async spinUpOne(challengeId: string, signal: AbortSignal): Promise<void> {
    const admit = async (challenge: Challenge): Promise<boolean> => {
      if (isChallengeExpired(challenge, this.clock.now())) return false;
      const instances = await this.state.listInstances(challengeId);
      const pooled = instances.filter(isPooled).length;
      return poolDelta(challenge.min, challenge.max, instances.length - pooled, pooled).create > 0;
    };
    // A spin-up that waited in line may have nothing left to do (the pool filled, the bounds
    // changed, the challenge went): no `up` for an instance that would not be admitted.
    const current = await this.state.loadChallenge(challengeId);
    if (!current || !(await admit(current))) return;
    const instance = await this.deployer.deploy(challengeId, { additional: {}, signal, admit });
    if (instance)
      this.logger.log(
        `instance ${instance.identity} registered in pool of challenge ${challengeId}`,
      );
  }

  /**
   * Tops the pool up to its target, counting the spin-ups this process already runs: the
   * janitor's repair of pools whose spin-ups were lost (a crash, a failed `up`).
   */
  replenish(challenge: Challenge, claimed: number, pooled: number): void {
    if (isChallengeExpired(challenge, this.clock.now())) return;
    const { create } = poolDelta(challenge.min, challenge.max, claimed, pooled);
    const missing = create - (this.inFlight.get(challenge.id) ?? 0);
    if (missing > 0) {
      this.logger.log(`pool of challenge ${challenge.id} short of ${missing}; spinning up`);
      this.spinUp(challenge.id, missing);
    }
  }

  /** Fills the pool of a new (or updated) challenge to its target, unless it expired. */
  fill(challenge: Challenge, claimed: number, pooled: number): void {
    if (isChallengeExpired(challenge, this.clock.now())) return;
    this.spinUp(challenge.id, poolDelta(challenge.min, challenge.max, claimed, pooled).create);
  }

  /**
   * Claims a pooled instance for `sourceId`, if there is one. Call it under the challenge's read
   * lock; the store's atomic claim gives each pooled instance to exactly one source, so
   * concurrent claimers simply move on to the next candidate. Triggers a refill. Reads no
   * record but the candidate's: the claim must not cost more with more instances. A candidate
   * whose scenario declares readiness probes is checked first (a couple of seconds at most):
   * one that no longer answers is skipped, and replaced in the background.
   *
   * Without `additional` (the common case at a CTF's start) the instance is handed out as it
   * is: the claim saves it as the source's in the same flushes (`finished`). With one, it is
   * redeployed with it by `finishClaim`.
   */
  async claim(
    challenge: Challenge,
    sourceId: string,
    additional: Record<string, string>,
  ): Promise<PoolClaim | undefined> {
    const { pooled, claimed } = await this.state.poolState(challenge.id);
    // Concurrent claimers start at different candidates instead of all racing for the first one
    // (upstream took the first in identity order; any pooled instance is as good).
    const start = pooled.length > 0 ? randomInt(pooled.length) : 0;
    const rotated = [...pooled.slice(start), ...pooled.slice(0, start)];
    // Instances another claim of this process is trying go last: a burst of claims on one
    // replica then spreads over the pool instead of colliding (a lost race costs flushes).
    const candidates = [
      ...rotated.filter((identity) => !this.claiming.has(identity)),
      ...rotated.filter((identity) => this.claiming.has(identity)),
    ].filter((identity) => !this.removing.has(identity));
    const asIs = Object.keys(additional).length === 0;
    for (const identity of candidates) {
      this.claiming.add(identity);
      try {
        const won = asIs
          ? await this.claimAsIs(challenge, identity, sourceId)
          : await this.claimToUpdate(challenge.id, identity, sourceId);
        if (won) {
          const total = pooled.length + claimed;
          if (shouldRefillAfterClaim(challenge.min, challenge.max, pooled.length, total)) {
            this.spinUp(challenge.id, 1);
          }
          // This claim took the pool below its min (once per fall, not at every claim).
          if (pooled.length >= challenge.min && pooled.length - 1 < challenge.min)
            await this.events.publish('pool.low', { challengeId: challenge.id });
          return { instance: won, finished: asIs };
        }
      } finally {
        this.claiming.delete(identity);
      }
    }
    if (challenge.min > 0)
      await this.events.publish('pool.exhausted', { challengeId: challenge.id });
    return undefined;
  }

  /**
   * Claims `identity` and saves it as the source's in one store call (its record flushed beside
   * the claim), under the instance's lock as every record write: a replica removing it as
   * unready then either sees it claimed or has removed it (and the claim fails). The record is
   * read under the lock, once: the janitor resumes an interrupted redeployment under this lock
   * alone, and the claim must hand out (and save) what it wrote. A record with readiness probes
   * is probed outside the lock (a probe may take seconds), then read and claimed under it again.
   */
  private async claimAsIs(
    challenge: Challenge,
    identity: string,
    sourceId: string,
  ): Promise<Claimed | undefined> {
    const underLock = (probed: boolean): Promise<Claimed | Instance | undefined> =>
      this.lock.withWriteLock(lockKeys.instance(challenge.id, identity), async () => {
        const current = await this.loadCandidate(challenge.id, identity);
        if (current === undefined || isClaimed(current)) return undefined;
        if (!probed && hasProbes(current)) return current;
        const record = asClaimedBy(challenge, current, sourceId, {}, this.clock.now());
        const won = await this.state.claim(challenge.id, identity, sourceId, { record });
        return won ? record : undefined;
      });
    const first = await underLock(false);
    if (first === undefined || isClaimed(first)) return first;
    if (!(await this.stillAnswers(first))) {
      this.replaceUnready(first);
      return undefined;
    }
    const second = await underLock(true);
    return second !== undefined && isClaimed(second) ? second : undefined;
  }

  /**
   * Claims `identity` as it is in the store; `finishClaim` redeploys it with the source's
   * additional and saves it (under the instance's lock) afterwards.
   */
  private async claimToUpdate(
    challengeId: string,
    identity: string,
    sourceId: string,
  ): Promise<Claimed | undefined> {
    const candidate = await this.loadCandidate(challengeId, identity);
    if (candidate === undefined || isClaimed(candidate)) return undefined;
    if (!(await this.stillAnswers(candidate))) {
      this.replaceUnready(candidate);
      return undefined;
    }
    if (!(await this.state.claim(challengeId, identity, sourceId))) return undefined;
    return { ...candidate, sourceId };
  }

  /**
   * Whether a pooled instance still answers its readiness probes (it did when it entered the
   * pool; its service may have died since). Instances without probes always do.
   */
  private async stillAnswers(instance: Instance): Promise<boolean> {
    if (!hasProbes(instance)) return true;
    const notReady = await this.readiness.waitReady(
      instance.readiness,
      this.readiness.bounds.claimTimeoutMs,
    );
    if (notReady === undefined) return true;
    this.logger.warn(
      `pooled instance ${instance.identity} of challenge ${instance.challengeId} does not answer ` +
        `(probe ${notReady.failing.join(', ')}: ${notReady.lastError}); not handing it out`,
    );
    return false;
  }

  /**
   * Removes, in the background, a pooled instance that stopped answering, then tops the pool up.
   * Under the instance's lock it is looked at again: claimed meanwhile (another replica's probe
   * saw it answer), or answering again, it is kept.
   */
  private replaceUnready(instance: Instance): void {
    const { challengeId, identity } = instance;
    if (this.removing.has(identity)) return;
    this.removing.add(identity);
    this.tasks.run(`replacing unready pooled instance ${identity}`, async (signal) => {
      try {
        const removed = await this.lock.withWriteLock(
          lockKeys.instance(challengeId, identity),
          async () => {
            const current = await this.state.loadInstance(challengeId, identity);
            if (current === undefined || isClaimed(current)) return false;
            if (await this.stillAnswers(current)) return false;
            await this.deployer.destroy(current, signal);
            return true;
          },
          signal,
        );
        if (!removed) return;
        this.logger.log(`unready pooled instance ${identity} of challenge ${challengeId} removed`);
        const challenge = await this.state.loadChallenge(challengeId);
        if (challenge === undefined) return;
        const { pooled, claimed } = await this.state.poolState(challengeId);
        this.replenish(challenge, claimed, pooled.length);
      } finally {
        this.removing.delete(identity);
      }
    });
  }

  /** A pooled candidate's record; undefined when it is gone or unreadable (never handed out). */
  private async loadCandidate(
    challengeId: string,
    identity: string,
  ): Promise<Instance | undefined> {
    try {
      return await this.state.loadInstance(challengeId, identity);
    } catch (err) {
      this.logger.warn(
        `skipping pooled instance ${identity} of challenge ${challengeId}: ${String(err)}`,
      );
      return undefined;
    }
  }

  /**
   * Makes a just-claimed instance the source's: expiry from now, and its own additional applied
   * in place, as upstream does. If that update fails the instance is destroyed, never half-given.
   */
  async finishClaim(
    challenge: Challenge,
    claimed: Claimed,
    additional: Record<string, string>,
    signal?: AbortSignal,
    /** Pulled by the caller before its locks (DeployerService.prefetch). */
    scenario?: FetchedScenario,
  ): Promise<Instance> {
    return this.lock.withWriteLock(lockKeys.instance(challenge.id, claimed.identity), async () => {
      // Re-read under the lock: a challenge update may have redeployed it since the claim (a
      // blue-green one even moved it to another identity, which is then the one to return).
      const current = await this.state.loadInstance(challenge.id, claimed.identity);
      if (!current) {
        const moved = await this.state.findClaimed(challenge.id, claimed.sourceId);
        if (moved) return moved;
        throw new InstanceNotFoundError(challenge.id, claimed.sourceId);
      }
      let instance: Instance = asClaimedBy(
        challenge,
        current,
        claimed.sourceId,
        additional,
        this.clock.now(),
      );
      if (Object.keys(additional).length > 0) {
        try {
          instance = await this.deployer.update(
            challenge,
            instance,
            'update_in_place',
            signal,
            scenario,
          );
          // Redeployed with the source's additional: it must answer again before it is theirs.
          await this.deployer.awaitReady(instance, instance.readiness, claimed.sourceId, signal);
        } catch (err) {
          await this.deployer
            .destroy(instance)
            .catch((cleanup: unknown) =>
              this.logger.error(
                `removing instance ${instance.identity} after a failed claim: ${String(cleanup)}`,
              ),
            );
          throw err;
        }
      }
      await this.state.saveInstance(instance);
      return instance;
    });
  }

  /** As upstream: after a claimed instance is deleted, refill if the pool is short. */
  refillAfterDelete(challenge: Challenge, pooled: number, totalBefore: number): void {
    if (isChallengeExpired(challenge, this.clock.now())) return;
    if (shouldRefillAfterDelete(challenge.min, challenge.max, pooled, totalBefore))
      this.spinUp(challenge.id, 1);
  }
}

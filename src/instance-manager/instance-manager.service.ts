import { Injectable, Logger } from '@nestjs/common';
import type { Attributes } from '@opentelemetry/api';
import { Span } from 'nestjs-otel/lib/tracing/decorators/span';
import { DeployerService } from '../deployer';
import { PoolerService } from '../pooler';
import {
  computeUntil,
  isChallengeExpired,
  isInstanceExpired,
  lockKeys,
  subjectOf,
  untilOverflows,
  type Challenge,
  type Instance,
} from '../shared/domain';
import {
  ChallengeExpiredError,
  ChallengeNoRenewalError,
  ChallengeNotFoundError,
  InstanceAlreadyExistsError,
  InstanceExpiredError,
  InstanceNotFoundError,
  timeoutPastLastTimestamp,
} from '../shared/errors';
import {
  Clock,
  DistributedLock,
  EventPublisher,
  StateStore,
  type FetchedScenario,
} from '../shared/ports';
import { ATTR, ServiceMetrics, type InstanceOpProbe } from '../shared/telemetry';
import type { CreateInstanceInput } from './instance-manager.types';

const opAttributes = (challengeId: string, sourceId: string): { attributes: Attributes } => ({
  attributes: { [ATTR.challengeId]: challengeId, [ATTR.sourceId]: sourceId },
});

/**
 * The InstanceManager use cases (upstream api/v1/instance).
 *
 * Locks, always taken in this order: source (write) → challenge → instance.
 * - The source lock makes "one instance per (challenge, source)" hold under concurrency.
 * - The challenge lock is held only for short checks and record changes, never during `up`,
 *   so a slow deployment for one source delays no other source (upstream held it throughout).
 * - Reads take no lock at all: records are replaced atomically.
 */
@Injectable()
export class InstanceManagerService {
  private readonly logger = new Logger(InstanceManagerService.name);
  /**
   * Creates running in this process, by source lock key. A second create for the same source
   * would only wait for the first one's `up` (seconds) to learn that the instance exists: it is
   * answered at once instead. Creates of the same source on another replica still wait on the
   * lock, and learn it then.
   */
  private readonly creating = new Set<string>();

  constructor(
    private readonly state: StateStore,
    private readonly lock: DistributedLock,
    private readonly clock: Clock,
    private readonly pooler: PoolerService,
    private readonly deployer: DeployerService,
    private readonly metrics: ServiceMetrics,
    private readonly events: EventPublisher,
  ) {}

  /** Span `create-instance`; duration in `instance.create.duration` or, from the pool, `…claim…`. */
  @Span('create-instance', (input: CreateInstanceInput) =>
    opAttributes(input.challengeId, input.sourceId),
  )
  create(input: CreateInstanceInput, signal?: AbortSignal): Promise<Instance> {
    return this.metrics.instanceOp('create', input.challengeId, (probe) =>
      this.createInstance(input, probe, signal),
    );
  }

  private async createInstance(
    input: CreateInstanceInput,
    probe: InstanceOpProbe,
    signal?: AbortSignal,
  ): Promise<Instance> {
    const { challengeId, sourceId } = input;
    const sourceKey = lockKeys.source(challengeId, sourceId);
    if (this.creating.has(sourceKey)) throw new InstanceAlreadyExistsError(challengeId, sourceId);
    this.creating.add(sourceKey);
    let instance: Instance;
    try {
      instance = await this.createUnderLocks(input, probe, signal);
    } finally {
      this.creating.delete(sourceKey);
    }
    // Both published before awaiting either: the journal keeps their call order and writes them
    // in one batch, so a create waits for one journal write, not two.
    await Promise.all([
      this.events.publish('instance.created', subjectOf(instance)),
      this.announceReady(instance),
    ]);
    return instance;
  }

  /**
   * `instance.ready`: the instance is handed to its source. CreateInstance answers only once the
   * scenario's readiness probes passed (after `up`, or again when claimed from the pool), so
   * this is when the source can connect. It publishes before any await, so it keeps its place
   * after an `instance.created` published just before without awaiting.
   */
  private async announceReady(instance: Instance): Promise<void> {
    await this.events.publish('instance.ready', subjectOf(instance));
  }

  /** `instance.failed` for a create whose deployment (or claim) failed, then the failure. */
  private async failed<T>(challengeId: string, sourceId: string, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      await this.events.publish('instance.failed', { challengeId, sourceId });
      throw err;
    }
  }

  private async createUnderLocks(
    input: CreateInstanceInput,
    probe: InstanceOpProbe,
    signal?: AbortSignal,
  ): Promise<Instance> {
    const { challengeId, sourceId } = input;
    const scenario = await this.pullBeforeCreate(input, signal);
    return this.lock.withWriteLock(
      lockKeys.source(challengeId, sourceId),
      async () => {
        // upstream: api/v1/instance/create.go, checks then the pool path.
        const { challenge, claimed } = await this.lock.withReadLock(
          lockKeys.challenge(challengeId),
          async () => {
            const challenge = await this.requireChallenge(challengeId);
            const now = this.clock.now();
            if (isChallengeExpired(challenge, now)) throw new ChallengeExpiredError(challengeId);
            if (untilOverflows(challenge, now)) throw timeoutPastLastTimestamp(true);
            if (await this.findClaimed(challengeId, sourceId))
              throw new InstanceAlreadyExistsError(challengeId, sourceId);
            const claimed = await this.failed(
              challengeId,
              sourceId,
              this.pooler.claim(challenge, sourceId, input.additional),
            );
            return { challenge, claimed };
          },
          signal,
        );
        if (claimed) {
          const { instance, finished } = claimed;
          probe.claimed(instance.identity);
          this.logger.log(
            `claiming instance ${instance.identity} of challenge ${challengeId} from pool for source ${sourceId}`,
          );
          if (finished) return instance;
          return this.failed(
            challengeId,
            sourceId,
            this.pooler.finishClaim(challenge, instance, input.additional, signal, scenario),
          );
        }
        this.logger.log(`creating new instance of challenge ${challengeId} for source ${sourceId}`);
        const mark = await this.state.beginCreation(challengeId, sourceId);
        let created: Instance | undefined;
        try {
          created = await this.failed(
            challengeId,
            sourceId,
            this.deployer.deploy(challengeId, {
              sourceId,
              additional: input.additional,
              signal,
              admit: (current) => Promise.resolve(!isChallengeExpired(current, this.clock.now())),
              scenario,
            }),
          );
        } finally {
          await mark.end();
        }
        // Not admitted: the challenge was deleted or expired while deploying (the stack is gone).
        if (!created) throw new ChallengeNotFoundError(challengeId);
        probe.identity(created.identity);
        return created;
      },
      signal,
    );
  }

  /**
   * Pulls the scenario before the source lock when this create will deploy (no pooled instance
   * to claim, or one to update with the source's additional), so a slow registry never holds
   * the source. Looked at without locks (records are replaced atomically); under the locks the
   * checks are made again, and the deployer compares the scenario with the challenge then.
   * Nothing to pull when the create will fail anyway (unknown, expired, timeout past the last
   * Timestamp, already claimed).
   */
  private async pullBeforeCreate(
    input: CreateInstanceInput,
    signal?: AbortSignal,
  ): Promise<FetchedScenario | undefined> {
    const challenge = await this.state.loadChallenge(input.challengeId);
    const now = this.clock.now();
    if (!challenge || isChallengeExpired(challenge, now) || untilOverflows(challenge, now))
      return undefined;
    // With an additional, a claimed instance is updated with it: the scenario is needed either way.
    // The pool first: a plain claim (the common case at a CTF's start) then reads nothing more.
    if (Object.keys(input.additional).length === 0) {
      const { pooled } = await this.state.poolState(input.challengeId);
      if (pooled.length > 0) return undefined;
    }
    if (await this.findClaimed(input.challengeId, input.sourceId)) return undefined;
    // Another replica deploys this source's instance right now: it will exist (this replica's
    // own creates are answered by `creating`). Without the mark, the answer came only after
    // that `up`, behind the source lock.
    if (await this.state.creationUnderway(input.challengeId, input.sourceId))
      throw new InstanceAlreadyExistsError(input.challengeId, input.sourceId);
    return this.deployer.prefetch(challenge, signal);
  }

  /** upstream quirk kept: an unknown challenge answers INSTANCE_NOT_FOUND here. */
  async retrieve(challengeId: string, sourceId: string): Promise<Instance> {
    const instance = await this.findClaimed(challengeId, sourceId);
    if (!instance) throw new InstanceNotFoundError(challengeId, sourceId);
    return instance;
  }

  /**
   * The instances of one source across challenges; no lock, no stop-the-world. Through the
   * store's source index: no challenge record is read but those the source has an instance of.
   */
  async *query(sourceId: string): AsyncIterable<Instance> {
    yield* await this.state.findClaimedOfSource(sourceId);
  }

  @Span('renew-instance', opAttributes)
  renew(challengeId: string, sourceId: string, signal?: AbortSignal): Promise<Instance> {
    return this.metrics.instanceOp('renew', challengeId, async () => {
      const renewed = await this.renewInstance(challengeId, sourceId, signal);
      await this.events.publish('instance.renewed', subjectOf(renewed));
      return renewed;
    });
  }

  private renewInstance(
    challengeId: string,
    sourceId: string,
    signal?: AbortSignal,
  ): Promise<Instance> {
    // upstream: api/v1/instance/renew.go
    return this.lock.withReadLock(
      lockKeys.challenge(challengeId),
      async () => {
        const challenge = await this.requireChallenge(challengeId);
        const found = await this.requireClaimed(challengeId, sourceId);
        return this.lock.withWriteLock(
          lockKeys.instance(challengeId, found.identity),
          async () => {
            const instance = await this.requireClaimed(challengeId, sourceId);
            if (challenge.timeoutMs === undefined) throw new ChallengeNoRenewalError(challengeId);
            const now = this.clock.now();
            if (isInstanceExpired(instance, now))
              throw new InstanceExpiredError(challengeId, sourceId);
            if (untilOverflows(challenge, now)) throw timeoutPastLastTimestamp(true);
            const renewed: Instance = { ...instance, lastRenew: now };
            const until = computeUntil(challenge, now);
            if (until) renewed.until = until;
            else delete renewed.until;
            await this.state.saveInstance(renewed);
            return renewed;
          },
          signal,
        );
      },
      signal,
    );
  }

  @Span('delete-instance', opAttributes)
  delete(challengeId: string, sourceId: string, signal?: AbortSignal): Promise<void> {
    return this.metrics.instanceOp('delete', challengeId, (probe) =>
      this.deleteInstance(challengeId, sourceId, probe, signal),
    );
  }

  private async deleteInstance(
    challengeId: string,
    sourceId: string,
    probe: InstanceOpProbe,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.lock.withWriteLock(
      lockKeys.source(challengeId, sourceId),
      async () => {
        // upstream: api/v1/instance/delete.go
        const { challenge, instance, pooled, total } = await this.lock.withReadLock(
          lockKeys.challenge(challengeId),
          async () => {
            const challenge = await this.requireChallenge(challengeId);
            const instance = await this.requireClaimed(challengeId, sourceId);
            const { pooled, claimed } = await this.state.poolState(challengeId);
            return { challenge, instance, pooled: pooled.length, total: pooled.length + claimed };
          },
          signal,
        );
        probe.identity(instance.identity);
        this.logger.log(
          `deleting instance ${instance.identity} of challenge ${challengeId} for source ${sourceId}`,
        );
        await this.lock.withWriteLock(
          lockKeys.instance(challengeId, instance.identity),
          () => this.deployer.destroy(instance, signal),
          signal,
        );
        await this.events.publish('instance.deleted', subjectOf(instance));
        this.pooler.refillAfterDelete(challenge, pooled, total);
      },
      signal,
    );
  }

  private async requireChallenge(id: string): Promise<Challenge> {
    const challenge = await this.state.loadChallenge(id);
    if (!challenge) throw new ChallengeNotFoundError(id);
    return challenge;
  }

  private async requireClaimed(challengeId: string, sourceId: string): Promise<Instance> {
    const instance = await this.findClaimed(challengeId, sourceId);
    if (!instance) throw new InstanceNotFoundError(challengeId, sourceId);
    return instance;
  }

  private findClaimed(challengeId: string, sourceId: string): Promise<Instance | undefined> {
    return this.state.findClaimed(challengeId, sourceId);
  }
}

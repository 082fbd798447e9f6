import { Injectable, Logger } from '@nestjs/common';
import { DeployerService } from '../deployer';
import { PoolerService, poolDelta } from '../pooler';
import {
  computeUntil,
  isChallengeExpired,
  isClaimed,
  isPooled,
  lockKeys,
  subjectOf,
  untilOverflows,
  type Challenge,
  type Instance,
  type UpdateStrategy,
} from '../shared/domain';
import {
  ChallengeAlreadyExistsError,
  ChallengeNotFoundError,
  IacOperationError,
  PoolerOutOfBoundsError,
  timeoutPastLastTimestamp,
  type PoolerViolation,
} from '../shared/errors';
import { mapAhead } from '../shared/map-ahead';
import {
  Clock,
  DistributedLock,
  EventPublisher,
  IacEngine,
  OciRegistry,
  StateStore,
  type FetchedScenario,
} from '../shared/ports';
import type {
  ChallengeView,
  CreateChallengeInput,
  UpdateChallengeInput,
} from './challenge-store.types';
import { applyUpdateMask, sameAdditional, sameRecord } from './update-mask';

/**
 * Challenges whose instances QueryChallenge reads together (see query): enough for the store to
 * list them in one go, few enough that the first line of a large CTF does not wait for all.
 */
const QUERY_BATCH = 512;
/** Batches QueryChallenge reads ahead of the one it sends. */
const QUERY_BATCHES_AHEAD = 2;

/**
 * upstream: api/v1/common/checks.go. Negative bounds are refused; the inversion is checked only
 * when both bounds are in scope (`max` = 0 means no maximum). Ours: a pool larger than
 * `maxPoolSize` is refused too (each pooled instance is a deployment kept running).
 */
export function checkPoolerBounds(
  min: number | undefined,
  max: number | undefined,
  maxPoolSize: number,
): void {
  const violations: PoolerViolation[] = [];
  if (min !== undefined && min < 0) violations.push('MIN_NEGATIVE');
  if (min !== undefined && min > maxPoolSize) violations.push('MIN_TOO_LARGE');
  if (max !== undefined && max < 0) violations.push('MAX_NEGATIVE');
  if (min !== undefined && max !== undefined && max > 0 && min > max)
    violations.push('INVERTED_BOUNDARIES');
  if (violations.length > 0)
    throw new PoolerOutOfBoundsError(violations, { min, max }, maxPoolSize);
}

/**
 * Refuses a timeout whose instances could not be given an `until`: now + timeout past the last
 * Timestamp. Checked alone, whatever `until` says, as an update may clear `until` later.
 */
export function checkTimeout(timeoutMs: number | undefined, now: Date): void {
  if (untilOverflows({ timeoutMs }, now)) throw timeoutPastLastTimestamp(false);
}

/** How instances follow an update that changed the scenario or the additional. */
interface Redeployment {
  strategy: UpdateStrategy;
  /** Pulled before the challenge lock (see `pullBeforeUpdate`). */
  scenario: FetchedScenario | undefined;
  signal: AbortSignal | undefined;
}

/** Pooled instances an update creates and destroys (upstream pkg/pool/delta.go). */
type PoolDelta = ReturnType<typeof poolDelta>;

/** Waits for every task; resolves to their failures, in the order they happened. */
async function failuresOf(tasks: readonly Promise<unknown>[]): Promise<unknown[]> {
  const failures: unknown[] = [];
  await Promise.all(
    tasks.map((task) =>
      task.then(
        () => undefined,
        (err: unknown) => void failures.push(err),
      ),
    ),
  );
  return failures;
}

/**
 * The ChallengeStore use cases (upstream api/v1/challenge). Writers of a challenge hold its
 * write lock; reads take none (records are replaced atomically), so listing never stops the
 * world.
 */
@Injectable()
export class ChallengeStoreService {
  private readonly logger = new Logger(ChallengeStoreService.name);

  constructor(
    private readonly state: StateStore,
    private readonly lock: DistributedLock,
    private readonly clock: Clock,
    private readonly oci: OciRegistry,
    private readonly iac: IacEngine,
    private readonly pooler: PoolerService,
    private readonly deployer: DeployerService,
    private readonly events: EventPublisher,
  ) {}

  async create(input: CreateChallengeInput, signal?: AbortSignal): Promise<ChallengeView> {
    // Everything a request can get wrong is refused before any lock or IaC work.
    checkPoolerBounds(input.min, input.max, this.pooler.maxSize);
    checkTimeout(input.timeoutMs, this.clock.now());
    this.oci.checkReference(input.scenario);
    const challenge: Challenge = { ...input, additional: { ...input.additional } };
    // Pulled before the lock, so a slow registry never holds the challenge; whether the id is
    // taken is asked first (without a lock: records are replaced atomically) and again under it.
    if (await this.state.loadChallenge(input.id)) throw new ChallengeAlreadyExistsError(input.id);
    const scenario = await this.oci.fetchScenario(input.scenario, signal);
    await this.lock.withWriteLock(
      lockKeys.challenge(input.id),
      async () => {
        if (await this.state.loadChallenge(input.id))
          throw new ChallengeAlreadyExistsError(input.id);
        this.logger.log(`creating challenge ${input.id}`);
        await this.iac.validate(scenario, challenge.additional);
        challenge.digest = scenario.digest;
        await this.state.saveChallenge(challenge);
      },
      signal,
    );
    this.pooler.fill(challenge, 0, 0);
    await this.events.publish('challenge.created', { challengeId: input.id });
    this.logger.log(`challenge ${input.id} created successfully`);
    return { ...challenge, instances: [] };
  }

  /**
   * Pulls, before the challenge lock, the scenario an update may deploy: the new reference when
   * the mask names one, else the current one when the additional may change. A slow registry
   * then holds nobody up; under the lock the pulled digest is compared with the record as it is
   * then. Without a new reference a failure waits: the update may need no scenario at all, and
   * an additional equal to the listed one needs none (if another update changed it meanwhile, the
   * instances fetch the scenario under their locks).
   */
  private async pullBeforeUpdate(
    input: UpdateChallengeInput,
    mask: ReadonlySet<string>,
    signal?: AbortSignal,
  ): Promise<FetchedScenario | undefined> {
    const reference = mask.has('scenario') ? input.scenario : undefined;
    if (reference === undefined && !mask.has('additional')) return undefined;
    // Unknown challenge: answered under the lock, without asking the registry.
    const listed = await this.state.loadChallenge(input.id);
    if (!listed) return undefined;
    if (reference === undefined) {
      if (sameAdditional(listed.additional, input.additional)) return undefined;
      return this.deployer.prefetch(listed, signal).catch(() => undefined);
    }
    const recorded = reference === listed.scenario ? listed.digest : undefined;
    return this.oci.fetchScenario(reference, signal, recorded);
  }

  async retrieve(id: string): Promise<ChallengeView> {
    const challenge = await this.state.loadChallenge(id);
    if (!challenge) throw new ChallengeNotFoundError(id);
    return this.view(challenge);
  }

  /**
   * Every challenge with its claimed instances, in the store's order. The instances are read for
   * a batch of challenges at once (one listing each costs more than the reads), and the next
   * batch is read while the current one is sent.
   */
  async *query(): AsyncIterable<ChallengeView> {
    const challenges = await this.state.listChallenges();
    // Batches of about one size: a short last one would cost more per challenge.
    const size = Math.ceil(
      challenges.length / Math.max(1, Math.ceil(challenges.length / QUERY_BATCH)),
    );
    const batches: Challenge[][] = [];
    for (let i = 0; i < challenges.length; i += size) batches.push(challenges.slice(i, i + size));
    for await (const views of mapAhead(batches, QUERY_BATCHES_AHEAD, (batch) => this.views(batch)))
      yield* views;
  }

  async update(input: UpdateChallengeInput, signal?: AbortSignal): Promise<ChallengeView> {
    const mask = input.mask ?? new Set();
    checkPoolerBounds(
      mask.has('min') ? input.min : undefined,
      mask.has('max') ? input.max : undefined,
      this.pooler.maxSize,
    );
    if (mask.has('timeout')) checkTimeout(input.timeoutMs, this.clock.now());
    if (mask.has('scenario')) this.oci.checkReference(input.scenario ?? '');
    const pulled = await this.pullBeforeUpdate(input, mask, signal);
    const changed = { any: false };
    try {
      return await this.lock.withWriteLock(
        lockKeys.challenge(input.id),
        () => this.updateLocked(input, pulled, changed, signal),
        signal,
      );
    } finally {
      // The record or the instances changed even when some instances failed to follow.
      if (changed.any) await this.events.publish('challenge.updated', { challengeId: input.id });
    }
  }

  /**
   * upstream: api/v1/challenge/update.go. The record first, then its instances: the claimed ones
   * follow, then the pool. Every instance is tried; the first failure is answered after all.
   * The caller holds the challenge's write lock. A record the update leaves as it was is not
   * written again: nothing is flushed, and `changed` stays false unless instances move.
   */
  private async updateLocked(
    input: UpdateChallengeInput,
    pulled: FetchedScenario | undefined,
    changed: { any: boolean },
    signal?: AbortSignal,
  ): Promise<ChallengeView> {
    const old = await this.state.loadChallenge(input.id);
    if (!old) throw new ChallengeNotFoundError(input.id);
    const scenarioChanged = await this.scenarioMoves(old, input, pulled, signal);
    const { next, additionalChanged } = applyUpdateMask(old, input, scenarioChanged);
    this.logger.log(
      `updating challenge ${input.id} (scenario: ${scenarioChanged}, additional: ${additionalChanged})`,
    );
    if (scenarioChanged) {
      const scenario =
        pulled?.reference === next.scenario
          ? pulled
          : await this.oci.fetchScenario(next.scenario, signal);
      await this.iac.validate(scenario, next.additional);
      next.digest = scenario.digest;
    }
    if (scenarioChanged || !sameRecord(old, next)) {
      await this.state.saveChallenge(next);
      changed.any = true;
    }

    const instances = await this.state.listInstances(next.id);
    const claimed = instances.filter(isClaimed);
    const pooled = instances.filter(isPooled);
    // Claimed instances are renewed whatever the mask; the pool moves when its bounds do.
    const delta = poolDelta(next.min, next.max, claimed.length, pooled.length);
    if (claimed.length > 0 || delta.create > 0 || delta.delete > 0) changed.any = true;
    const redeploy: Redeployment | undefined =
      scenarioChanged || additionalChanged
        ? { strategy: input.updateStrategy, scenario: pulled, signal }
        : undefined;
    const now = this.clock.now();
    const failures = [
      ...(await this.followClaimed(next, claimed, now, redeploy)),
      ...(await this.resizePool(next, delta, pooled, now, redeploy)),
    ];
    if (failures.length > 0) {
      for (const f of failures) this.logger.error(`update of challenge ${input.id}: ${String(f)}`);
      throw new IacOperationError('up', `challenge ${input.id}`, { cause: failures[0] });
    }
    return this.view(next);
  }

  /**
   * Whether the mask moves the challenge to another scenario. The digest validated last time is
   * compared, not the tag's digest now: a tag re-pushed since is a change the operator must see.
   * Records written by upstream have none: it is resolved then.
   */
  private async scenarioMoves(
    old: Challenge,
    input: UpdateChallengeInput,
    pulled: FetchedScenario | undefined,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (!input.mask?.has('scenario') || input.scenario === undefined) return false;
    const before = old.digest ?? (await this.oci.resolve(old.scenario, signal));
    const after =
      pulled?.reference === input.scenario
        ? pulled.digest
        : await this.oci.resolve(input.scenario, signal);
    return before !== after;
  }

  /**
   * Every claimed instance follows: `until` recomputed (upstream renews them all), and a
   * redeploy when the scenario or additional changed. Each is reloaded under its lock
   * (upstream: lock; load): a claim being finished or a delete may have changed it since the
   * listing, and a deleted one must stay deleted. Resolves to the failures.
   */
  private followClaimed(
    next: Challenge,
    claimed: readonly Instance[],
    now: Date,
    redeploy: Redeployment | undefined,
  ): Promise<unknown[]> {
    return failuresOf(
      claimed.map((listed) =>
        this.lock.withWriteLock(lockKeys.instance(next.id, listed.identity), async () => {
          const instance = await this.state.loadInstance(next.id, listed.identity);
          if (!instance) return;
          let updated: Instance = { ...instance };
          const until = computeUntil(next, now);
          if (until) updated.until = until;
          else delete updated.until;
          if (redeploy) updated = await this.redeployed(next, updated, redeploy);
          await this.state.saveInstance(updated);
        }),
      ),
    );
  }

  /**
   * The pool follows the new bounds (`delta`): the surplus destroyed (lowest
   * identities first), the rest redeployed when the scenario or additional changed, and what is
   * missing spun up in the background unless the challenge expired. Resolves to the failures.
   */
  private async resizePool(
    next: Challenge,
    delta: PoolDelta,
    pooled: readonly Instance[],
    now: Date,
    redeploy: Redeployment | undefined,
  ): Promise<unknown[]> {
    const sortedPooled = [...pooled].sort((a, b) => a.identity.localeCompare(b.identity));
    const toDelete = sortedPooled.slice(0, delta.delete);
    const toKeep = sortedPooled.slice(delta.delete);
    const failures = await failuresOf([
      ...toDelete.map((instance) =>
        this.lock.withWriteLock(lockKeys.instance(next.id, instance.identity), () =>
          this.deployer.destroy(instance),
        ),
      ),
      ...(redeploy
        ? toKeep.map((listed) =>
            this.lock.withWriteLock(lockKeys.instance(next.id, listed.identity), async () => {
              const instance = await this.state.loadInstance(next.id, listed.identity);
              if (!instance) return;
              await this.state.saveInstance(await this.redeployed(next, instance, redeploy));
            }),
          )
        : []),
    ]);
    if (!isChallengeExpired(next, now)) this.pooler.spinUp(next.id, delta.create);
    return failures;
  }

  private redeployed(
    next: Challenge,
    instance: Instance,
    { strategy, scenario, signal }: Redeployment,
  ): Promise<Instance> {
    return this.deployer.update(next, instance, strategy, signal, scenario);
  }

  async delete(id: string, signal?: AbortSignal): Promise<void> {
    await this.lock.withWriteLock(
      lockKeys.challenge(id),
      async () => {
        // upstream: api/v1/challenge/delete.go, without its leaks: a challenge is removed only once
        // every instance (claimed and pooled) is destroyed; failed ones stay listed and retryable.
        if (!(await this.state.loadChallenge(id))) throw new ChallengeNotFoundError(id);
        const instances = await this.state.listInstances(id);
        const results = await Promise.allSettled(
          instances.map(async (instance) => {
            await this.lock.withWriteLock(lockKeys.instance(id, instance.identity), () =>
              this.deployer.destroy(instance, signal),
            );
            if (isClaimed(instance))
              await this.events.publish('instance.deleted', subjectOf(instance));
          }),
        );
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed.length > 0) {
          for (const f of failed)
            this.logger.error(`delete of challenge ${id}: ${String(f.reason)}`);
          throw new IacOperationError(
            'destroy',
            `challenge ${id} (${failed.length} of ${instances.length} instances)`,
            {
              cause: failed[0]?.reason,
            },
          );
        }
        await this.state.deleteChallenge(id);
      },
      signal,
    );
    await this.events.publish('challenge.deleted', { challengeId: id });
  }

  private async view(challenge: Challenge): Promise<ChallengeView> {
    return viewOf(challenge, await this.state.listInstances(challenge.id));
  }

  private async views(challenges: Challenge[]): Promise<ChallengeView[]> {
    const instances = await this.state.listInstancesOf(challenges.map((c) => c.id));
    return challenges.map((challenge, i) => viewOf(challenge, instances[i] ?? []));
  }
}

function viewOf(challenge: Challenge, instances: Instance[]): ChallengeView {
  return { ...challenge, instances: instances.filter(isClaimed) };
}

import { Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import {
  computeUntil,
  lockKeys,
  type Challenge,
  type Instance,
  type UpdateStrategy,
} from '../shared/domain';
import { ChallengeNotFoundError, InstanceNotReadyError } from '../shared/errors';
import {
  Clock,
  DistributedLock,
  IacEngine,
  OciRegistry,
  ReadinessProbe,
  StateStore,
  type FetchedScenario,
  type StackOutputs,
  type StackRef,
} from '../shared/ports';

/** upstream: identity = first 16 hex characters of random bytes (pkg/identity). */
export function newIdentity(): string {
  return randomBytes(8).toString('hex');
}

/** The additional a program sees: the challenge's, overridden by the instance's, as upstream merges them. */
export function mergedAdditional(
  challenge: Challenge,
  instance: Pick<Instance, 'additional'>,
): Record<string, string> {
  return { ...challenge.additional, ...instance.additional };
}

function withoutPending(instance: Instance): Instance {
  const copy = { ...instance };
  delete copy.pending;
  return copy;
}

/** The instance with what its stack now exports (a redeployment may change the probes too). */
function withOutputs(instance: Instance, outputs: StackOutputs): Instance {
  const next: Instance = {
    ...instance,
    connectionInfo: outputs.connectionInfo,
    flags: outputs.flags,
  };
  if (outputs.readiness === undefined) delete next.readiness;
  else next.readiness = outputs.readiness;
  return next;
}

/**
 * Deploys, updates and destroys the stacks of instances, and keeps their records in step.
 * Callers hold the locks their use case needs; the rules here are about records and stacks:
 * a record exists only for a stack that was deployed, and stays while its stack does.
 */
@Injectable()
export class DeployerService {
  private readonly logger = new Logger(DeployerService.name);

  constructor(
    private readonly state: StateStore,
    private readonly lock: DistributedLock,
    private readonly oci: OciRegistry,
    private readonly iac: IacEngine,
    private readonly clock: Clock,
    private readonly readiness: ReadinessProbe,
  ) {}

  /**
   * Deploys a new instance of a challenge and records it, claimed by `sourceId` or pooled.
   * The record is written only after `up` succeeded, the instance answered its readiness probes
   * (InstanceNotReadyError otherwise, its stack destroyed), and only if `admit` (run under the
   * challenge lock on the challenge as it is then) agrees; otherwise the stack is destroyed
   * again. Returns undefined when not admitted.
   */
  async deploy(
    challengeId: string,
    opts: {
      sourceId?: string;
      additional: Record<string, string>;
      signal?: AbortSignal;
      admit: (challenge: Challenge) => Promise<boolean>;
      /** Pulled by the caller before its own locks (see `prefetch`). */
      scenario?: FetchedScenario;
    },
  ): Promise<Instance | undefined> {
    const identity = newIdentity();
    let pulled = opts.scenario;
    if (pulled === undefined) {
      const listed = await this.state.loadChallenge(challengeId);
      if (!listed) throw new ChallengeNotFoundError(challengeId);
      pulled = await this.prefetch(listed, opts.signal);
    }
    const prefetched = pulled;
    return this.lock.withWriteLock(lockKeys.instance(challengeId, identity), async () => {
      const challenge = await this.state.loadChallenge(challengeId);
      if (!challenge) throw new ChallengeNotFoundError(challengeId);
      const scenario = await this.scenarioOf(challenge, prefetched, opts.signal);
      const outputs = await this.iac.up(
        {
          challengeId,
          identity,
          scenario,
          additional: { ...challenge.additional, ...opts.additional },
        },
        opts.signal,
      );
      const ref = { challengeId, identity };
      try {
        await this.awaitReady(ref, outputs.readiness, opts.sourceId, opts.signal);
      } catch (err) {
        // No record was written: the stack goes, so nothing is left of an instance that never
        // answered (or whose caller gave up waiting).
        await this.iac
          .destroy(ref)
          .catch((cleanup: unknown) =>
            this.logger.error(`removing unready instance ${identity}: ${String(cleanup)}`),
          );
        throw err;
      }
      const now = this.clock.now();
      // The challenge may have changed (deleted, expired, pool filled) during `up`: decide again.
      const recorded = await this.lock.withWriteLock(lockKeys.challenge(challengeId), async () => {
        const current = await this.state.loadChallenge(challengeId);
        if (!current || !(await opts.admit(current))) return undefined;
        const instance: Instance = {
          challengeId,
          identity,
          ...(opts.sourceId === undefined ? {} : { sourceId: opts.sourceId }),
          since: now,
          lastRenew: now,
          ...(opts.sourceId === undefined ? {} : { until: computeUntil(current, now) }),
          connectionInfo: outputs.connectionInfo,
          flags: outputs.flags,
          additional: { ...opts.additional },
          ...(outputs.readiness === undefined ? {} : { readiness: outputs.readiness }),
        };
        if (instance.until === undefined) delete instance.until;
        await this.state.saveInstance(instance);
        return instance;
      });
      if (!recorded) {
        this.logger.log(
          `instance ${identity} of challenge ${challengeId} not admitted after up; destroying it`,
        );
        await this.iac.destroy({ challengeId, identity });
      }
      return recorded;
    });
  }

  /**
   * Waits until a deployed stack answers its readiness probes, within READINESS_TIMEOUT; at once
   * when it has none (`probes` undefined: the scenario exports no `readiness`). Throws
   * InstanceNotReadyError when time runs out (the caller removes the instance), or the signal's
   * reason when it aborts.
   */
  async awaitReady(
    ref: StackRef,
    probes: readonly string[] | undefined,
    sourceId: string | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const timeoutMs = this.readiness.bounds.readyTimeoutMs;
    if (probes !== undefined && probes.length > 0) {
      const notReady = await this.readiness.waitReady(probes, timeoutMs, signal);
      if (notReady !== undefined) {
        this.logger.warn(
          `instance ${ref.identity} of challenge ${ref.challengeId} not ready within ${timeoutMs} ms ` +
            `(probe ${notReady.failing.join(', ')} never answered: ${notReady.lastError}); removing it`,
        );
        throw new InstanceNotReadyError(ref.challengeId, sourceId, timeoutMs);
      }
    }
    // The one point where an instance is known to answer: freshly deployed for a source or for
    // the pool (its record is written next), or redeployed for the source claiming it.
  }

  /**
   * Brings an existing instance to the challenge's current scenario and additional with the
   * given strategy. Returns the instance to record (its identity may change).
   * The caller holds the instance's lock and saves the result.
   */
  async update(
    challenge: Challenge,
    instance: Instance,
    strategy: UpdateStrategy,
    signal?: AbortSignal,
    prefetched?: FetchedScenario,
  ): Promise<Instance> {
    const scenario = await this.scenarioOf(challenge, prefetched, signal);
    await this.adoptIfUpstream(instance, signal);
    const additional = mergedAdditional(challenge, instance);
    const at = { challengeId: instance.challengeId };
    const secrets = [...instance.flags, instance.connectionInfo];
    switch (strategy) {
      case 'update_in_place': {
        const out = await this.iac.up(
          { ...at, identity: instance.identity, scenario, additional, secrets },
          signal,
        );
        return withOutputs(instance, out);
      }
      case 'recreate': {
        // Recorded first: a crash between the destroy and the up is finished by the next sweep.
        await this.state.saveInstance({ ...instance, pending: { operation: 'recreate' } });
        await this.iac.destroy({ ...at, identity: instance.identity }, signal);
        const out = await this.iac.up(
          { ...at, identity: instance.identity, scenario, additional, secrets },
          signal,
        );
        return withoutPending(withOutputs(instance, out));
      }
      case 'blue_green': {
        const identity = newIdentity();
        // Recorded first: a crash before the new record exists is undone by the next sweep, a
        // crash after it is finished (the old stack destroyed).
        await this.state.saveInstance({
          ...instance,
          pending: { operation: 'blue_green', identity },
        });
        // The new stack is locked until its record exists, so a reconciliation looking for
        // stacks without records never takes it for an orphan.
        const moved = await this.lock.withWriteLock(
          lockKeys.instance(instance.challengeId, identity),
          async () => {
            const out = await this.iac.up(
              { ...at, identity, scenario, additional, secrets },
              signal,
            );
            const next = withoutPending(withOutputs({ ...instance, identity }, out));
            // The new record first: a crash between the two steps leaves a duplicate, never a loss.
            await this.state.saveInstance(next);
            return next;
          },
        );
        await this.finishBlueGreen(instance);
        return moved;
      }
    }
  }

  /**
   * Pulls the challenge's scenario (the cache at its recorded digest during a registry outage).
   * Callers do it before taking their locks: a slow registry then holds nobody up, and
   * `scenarioOf` checks the result against the challenge as it is under the lock.
   */
  prefetch(challenge: Challenge, signal?: AbortSignal): Promise<FetchedScenario> {
    return this.oci.fetchScenario(challenge.scenario, signal, challenge.digest);
  }

  /**
   * The scenario to deploy for `challenge` as loaded under the lock: the prefetched one when
   * the challenge still names that reference at that digest; otherwise (an update moved it
   * meanwhile, or the tag moved since it was recorded) a fetch again, normally a cache hit.
   */
  private async scenarioOf(
    challenge: Challenge,
    prefetched: FetchedScenario | undefined,
    signal?: AbortSignal,
  ): Promise<FetchedScenario> {
    if (
      prefetched?.reference === challenge.scenario &&
      (challenge.digest === undefined || challenge.digest === prefetched.digest)
    ) {
      return prefetched;
    }
    return this.prefetch(challenge, signal);
  }

  /**
   * Completes or undoes a redeployment a crash interrupted (the instance's `pending` says
   * which). The caller holds the instance's lock, and pulled the scenario before it when the
   * operation is a recreate.
   */
  async resume(
    challenge: Challenge,
    instance: Instance,
    signal?: AbortSignal,
    prefetched?: FetchedScenario,
  ): Promise<void> {
    const pending = instance.pending;
    if (pending === undefined) return;
    if (pending.operation === 'recreate') {
      await this.state.saveInstance(
        await this.update(
          challenge,
          withoutPending(instance),
          'update_in_place',
          signal,
          prefetched,
        ),
      );
      return;
    }
    if (await this.state.loadInstance(instance.challengeId, pending.identity)) {
      await this.finishBlueGreen(instance, signal);
      return;
    }
    // The new instance was never recorded: drop its stack (if any) and keep the old one.
    await this.lock.withWriteLock(lockKeys.instance(instance.challengeId, pending.identity), () =>
      this.iac.destroy({ challengeId: instance.challengeId, identity: pending.identity }, signal),
    );
    await this.state.saveInstance(withoutPending(instance));
  }

  private async finishBlueGreen(old: Instance, signal?: AbortSignal): Promise<void> {
    await this.iac.destroy({ challengeId: old.challengeId, identity: old.identity }, signal);
    await this.state.deleteInstance(old.challengeId, old.identity);
  }

  /**
   * Takes over an instance an upstream chall-manager (Go) deployed, if it is one: its Pulumi
   * state (kept in the record by upstream) is imported into our backend first, then the record
   * is rewritten without it. A crash in between leaves the state in the record and the stack
   * imported; the next call sees the stack and only rewrites the record. The caller holds the
   * instance's lock (one adoption at a time across replicas). True when it adopted the instance.
   */
  async adoptIfUpstream(
    instance: Pick<Instance, 'challengeId' | 'identity'>,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const state = await this.state.upstreamState(instance.challengeId, instance.identity);
    if (state === undefined) return false;
    const ref = { challengeId: instance.challengeId, identity: instance.identity };
    await this.iac.adopt(ref, state, signal);
    await this.state.dropUpstreamState(instance.challengeId, instance.identity);
    return true;
  }

  /** Destroys an instance's stack, then its record; a failed destroy keeps the record. */
  async destroy(
    instance: Pick<Instance, 'challengeId' | 'identity'>,
    signal?: AbortSignal,
  ): Promise<void> {
    // An upstream stack not adopted yet is not in our backend: destroying it there would leave
    // its resources running.
    await this.adoptIfUpstream(instance, signal);
    await this.iac.destroy(
      { challengeId: instance.challengeId, identity: instance.identity },
      signal,
    );
    await this.state.deleteInstance(instance.challengeId, instance.identity);
  }
}

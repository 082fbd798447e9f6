import { MetricService } from 'nestjs-otel';
import { InMemoryDistributedLock } from '../../src/adapters/lock/in-memory-distributed-lock.adapter';
import { ChallengeStoreService } from '../../src/challenge-store/challenge-store.service';
import type { UpdateChallengeInput } from '../../src/challenge-store/challenge-store.types';
import { InstanceManagerService } from '../../src/instance-manager/instance-manager.service';
import { DeployerService } from '../../src/deployer/deployer.service';
import { PoolLimits } from '../../src/pooler/pool-limits';
import { PoolerService } from '../../src/pooler/pooler.service';
import { BackgroundTasks } from '../../src/shared/background-tasks';
import type { Challenge, Instance } from '../../src/shared/domain';
import { ServiceMetrics } from '../../src/shared/telemetry';
import { aChallenge, T0 } from './builders';
import { FakeIacEngine } from './fakes/fake-iac-engine';
import { FixedClock } from './fakes/fixed-clock';
import { InMemoryOciRegistry } from './fakes/in-memory-oci-registry';
import { InMemoryEventJournal } from './fakes/in-memory-event-journal';
import { FakeReadinessProbe } from './fakes/fake-readiness-probe';
import { InMemoryStateStore } from './fakes/in-memory-state-store';

/** The four services wired by hand over in-memory doubles, as the Nest modules wire them. */
export interface ServicesUnderTest {
  state: InMemoryStateStore;
  lock: InMemoryDistributedLock;
  clock: FixedClock;
  oci: InMemoryOciRegistry;
  iac: FakeIacEngine;
  /** Every event the services published. */
  events: InMemoryEventJournal;
  readiness: FakeReadinessProbe;
  tasks: BackgroundTasks;
  deployer: DeployerService;
  pooler: PoolerService;
  challenges: ChallengeStoreService;
  instances: InstanceManagerService;
  /** Creates a challenge (defaults of {@link aChallenge}) and waits for its pool. */
  givenChallenge(overrides?: Partial<Challenge>): Promise<Challenge>;
  /** Pooled instances of a challenge, sorted by identity. */
  pooled(challengeId?: string): Promise<Instance[]>;
  /** Claimed instances of a challenge, sorted by identity. */
  claimed(challengeId?: string): Promise<Instance[]>;
}

/** The default scenario of {@link aChallenge}, published in the fake registry at start. */
export const DEFAULT_SCENARIO = aChallenge().scenario;

/** Pool bounds of the services under test: spin-ups are not the bottleneck unless a test says. */
export const TEST_POOL_LIMITS = new PoolLimits(100, 16);

export function servicesUnderTest(
  start: Date = T0,
  limits: PoolLimits = TEST_POOL_LIMITS,
): ServicesUnderTest {
  const state = new InMemoryStateStore();
  const lock = new InMemoryDistributedLock();
  const clock = new FixedClock(start);
  const oci = new InMemoryOciRegistry();
  const iac = new FakeIacEngine();
  const readiness = new FakeReadinessProbe();
  const tasks = new BackgroundTasks();
  const events = new InMemoryEventJournal(clock);
  const deployer = new DeployerService(state, lock, oci, iac, clock, readiness);
  const pooler = new PoolerService(state, lock, clock, tasks, deployer, limits, readiness, events);
  const challenges = new ChallengeStoreService(
    state,
    lock,
    clock,
    oci,
    iac,
    pooler,
    deployer,
    events,
  );
  const instances = new InstanceManagerService(
    state,
    lock,
    clock,
    pooler,
    deployer,
    new ServiceMetrics(new MetricService()),
    events,
  );
  oci.push(DEFAULT_SCENARIO);

  const byIdentity = (a: Instance, b: Instance): number => a.identity.localeCompare(b.identity);
  const listed = async (challengeId: string, claimed: boolean): Promise<Instance[]> =>
    (await state.listInstances(challengeId))
      .filter((x) => (x.sourceId !== undefined) === claimed)
      .sort(byIdentity);

  return {
    state,
    lock,
    clock,
    oci,
    iac,
    readiness,
    events,
    tasks,
    deployer,
    pooler,
    challenges,
    instances,
    async givenChallenge(overrides = {}) {
      const challenge = aChallenge(overrides);
      await challenges.create(challenge);
      await tasks.drain();
      // As stored: with the digest the scenario was validated at.
      return (await state.loadChallenge(challenge.id)) ?? challenge;
    },
    pooled: (challengeId = 'chall-1') => listed(challengeId, false),
    claimed: (challengeId = 'chall-1') => listed(challengeId, true),
  };
}

/** An UpdateChallenge request that changes nothing unless `overrides` say so. */
export function anUpdate(
  challenge: Challenge,
  overrides: Partial<UpdateChallengeInput> = {},
): UpdateChallengeInput {
  return {
    id: challenge.id,
    mask: new Set(),
    scenario: challenge.scenario,
    updateStrategy: 'update_in_place',
    ...(challenge.timeoutMs === undefined ? {} : { timeoutMs: challenge.timeoutMs }),
    ...(challenge.until === undefined ? {} : { until: challenge.until }),
    additional: { ...challenge.additional },
    min: challenge.min,
    max: challenge.max,
    ...overrides,
  };
}

/** Collects an async iterable (the streaming queries). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Fails instead of hanging when `promise` does not settle within `ms` (bounded waits only). */
export async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

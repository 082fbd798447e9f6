import type { Challenge } from '../../src/shared/domain/challenge';
import type { Instance } from '../../src/shared/domain/instance';

/** The fixed instant test data is anchored on (pair it with `new FixedClock(T0)`). */
export const T0 = new Date('2026-01-01T00:00:00.000Z');

/** A deterministic identity: `anIdentity(1)` = `0000000000000001`. */
export function anIdentity(n: number): string {
  return n.toString(16).padStart(16, '0');
}

/** A challenge with fixed defaults: no timeout, no until, no pool. */
export function aChallenge(overrides: Partial<Challenge> = {}): Challenge {
  return {
    id: 'chall-1',
    scenario: 'localhost:5000/scenarios/chall-1:v1',
    additional: {},
    min: 0,
    max: 0,
    ...overrides,
  };
}

/** An instance of `chall-1` claimed by `source-1`, created and renewed at {@link T0}. */
export function anInstance(overrides: Partial<Instance> = {}): Instance {
  return {
    challengeId: 'chall-1',
    identity: anIdentity(1),
    sourceId: 'source-1',
    since: new Date(T0.getTime()),
    lastRenew: new Date(T0.getTime()),
    connectionInfo: 'nc 127.0.0.1 1337',
    flags: ['CTF{fixed-flag}'],
    additional: {},
    ...overrides,
  };
}

/** A pooled instance: {@link anInstance} without `sourceId` (the key is absent, not undefined). */
export function aPooledInstance(overrides: Omit<Partial<Instance>, 'sourceId'> = {}): Instance {
  const pooled = anInstance(overrides);
  delete pooled.sourceId;
  return pooled;
}

import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { letPendingWorkRun } from '../../test/contract/helpers';
import {
  T0,
  aChallenge,
  anIdentity,
  anInstance,
  aPooledInstance,
} from '../../test/support/builders';
import { fakeConnectionInfo } from '../../test/support/fakes/fake-iac-engine';
import { aDigest } from '../../test/support/fakes/in-memory-oci-registry';
import {
  DEFAULT_SCENARIO,
  anUpdate,
  collect,
  servicesUnderTest,
  within,
  type ServicesUnderTest,
} from '../../test/support/services-under-test';
import { MAX_TIMESTAMP_MS, type Challenge } from '../shared/domain';
import {
  IacOperationError,
  PoolerOutOfBoundsError,
  ScenarioInvalidError,
  type PoolerViolation,
} from '../shared/errors';
import { checkPoolerBounds, checkTimeout } from './challenge-store.service';
import type { UpdatablePath } from './challenge-store.types';

const MINUTE = 60_000;
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const SCENARIO_V2 = 'localhost:5000/scenarios/chall-1:v2';

describe('checkPoolerBounds', () => {
  // upstream: api/v1/common/checks.go
  it.each([
    // min, max -> violations
    [0, 0, []],
    [2, 0, []], // max = 0: no maximum, no inversion
    [2, 2, []],
    [3, 2, ['INVERTED_BOUNDARIES']],
    [-1, 0, ['MIN_NEGATIVE']],
    [0, -1, ['MAX_NEGATIVE']],
    [-1, -1, ['MIN_NEGATIVE', 'MAX_NEGATIVE']],
    [3, undefined, []], // max out of scope: no inversion check
    [undefined, -1, ['MAX_NEGATIVE']],
    [100, 0, []], // the largest pool allowed (100 here)
    [101, 0, ['MIN_TOO_LARGE']],
    [20000, 30000, ['MIN_TOO_LARGE']],
  ] as [number | undefined, number | undefined, PoolerViolation[]][])(
    'should report %s/%s as the listed violations when checked',
    (min, max, violations) => {
      if (violations.length === 0) {
        expect(() => checkPoolerBounds(min, max, 100)).not.toThrow();
        return;
      }
      let thrown: unknown;
      try {
        checkPoolerBounds(min, max, 100);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(PoolerOutOfBoundsError);
      expect((thrown as PoolerOutOfBoundsError).violations).toEqual(violations);
    },
  );
});

describe('checkTimeout', () => {
  const longest = MAX_TIMESTAMP_MS - T0.getTime();
  it.each([undefined, 1, longest])('should accept a timeout of %s ms at T0', (timeoutMs) => {
    expect(() => checkTimeout(timeoutMs, T0)).not.toThrow();
  });

  it.each([longest + 1, 315_576_000_000_000])(
    'should throw INVALID_ARGUMENT naming timeout when a timeout of %s ms puts until past the last Timestamp',
    (timeoutMs) => {
      expect(() => checkTimeout(timeoutMs, T0)).toThrow(
        expect.objectContaining({ reason: 'INVALID_ARGUMENT', field: 'timeout' }) as Error,
      );
    },
  );
});

describe('ChallengeStoreService', () => {
  let sut: ServicesUnderTest;

  beforeEach(() => {
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    sut = servicesUnderTest();
  });
  afterEach(async () => {
    sut.iac.releaseUps();
    sut.iac.releaseDestroys();
    await sut.tasks.drain();
    vi.restoreAllMocks();
  });

  /** A challenge with one instance claimed by `source-1` and `min` pooled ones. */
  async function withInstances(overrides: Partial<Challenge> = {}): Promise<Challenge> {
    const challenge = await sut.givenChallenge(overrides);
    await sut.instances.create({
      challengeId: challenge.id,
      sourceId: 'source-1',
      additional: { own: 'x' },
    });
    await sut.tasks.drain();
    return challenge;
  }

  /** How many `up` each stack has seen so far. */
  function upsOf(identities: string[]): Map<string, number> {
    return new Map(identities.map((id) => [id, sut.iac.stackOf('chall-1', id)?.ups ?? 0]));
  }

  /** IaC calls made by `work` (background work included). */
  async function iacCallsOf(work: () => Promise<unknown>): Promise<typeof sut.iac.calls> {
    const before = sut.iac.calls.length;
    await work();
    await sut.tasks.drain();
    return sut.iac.calls.slice(before);
  }

  describe('create', () => {
    it('should validate with the challenge additional, save and echo the request when valid', async () => {
      const challenge: Challenge = {
        id: 'chall-1',
        scenario: DEFAULT_SCENARIO,
        timeoutMs: 10 * MINUTE,
        until: at(60 * MINUTE),
        additional: { a: '1' },
        min: 0,
        max: 3,
      };

      const view = await sut.challenges.create(challenge);

      const digest = sut.oci.digestOf(DEFAULT_SCENARIO);
      expect(view).toEqual({ ...challenge, digest, instances: [] });
      expect(sut.iac.calls).toEqual([
        { op: 'validate', reference: DEFAULT_SCENARIO, additional: { a: '1' } },
      ]);
      expect(await sut.state.loadChallenge('chall-1')).toEqual({
        ...challenge,
        digest: sut.oci.digestOf(DEFAULT_SCENARIO),
      });
    });

    it.each(['no-registry', 'localhost:5000/has space:v1', '', 'localhost:5000/UPPER:v1'])(
      'should throw OCI_REFERENCE_MALFORMED without any IaC or registry call when the reference is %j',
      async (scenario) => {
        await expect(
          sut.challenges.create({ ...aCreateRequest(), scenario }),
        ).rejects.toMatchObject({
          reason: 'OCI_REFERENCE_MALFORMED',
        });
        expect(sut.iac.calls).toEqual([]);
        expect(sut.oci.calls).toEqual([]);
        expect(await sut.state.listChallenges()).toEqual([]);
      },
    );

    it('should throw INVALID_ARGUMENT naming timeout before any work when the timeout puts until past the last Timestamp', async () => {
      // timeout "315576000000s": accepted before, instances then expired in year 12027.
      await expect(
        sut.challenges.create({ ...aCreateRequest(), timeoutMs: 315_576_000_000_000 }),
      ).rejects.toMatchObject({ reason: 'INVALID_ARGUMENT', field: 'timeout' });
      expect(sut.iac.calls).toEqual([]);
      expect(sut.oci.calls).toEqual([]);
      expect(await sut.state.listChallenges()).toEqual([]);
    });

    it.each([
      [-1, 0],
      [0, -1],
      [3, 2],
      [101, 0], // above the largest pool allowed
    ])(
      'should throw CHALLENGE_POOLER_OUT_OF_BOUNDS before any work when min=%i and max=%i',
      async (min, max) => {
        await expect(
          sut.challenges.create({ ...aCreateRequest(), min, max }),
        ).rejects.toMatchObject({
          reason: 'CHALLENGE_POOLER_OUT_OF_BOUNDS',
        });
        expect(sut.iac.calls).toEqual([]);
        expect(sut.oci.calls).toEqual([]);
      },
    );

    it('should throw CHALLENGE_ALREADY_EXISTS and keep the first when the id is taken', async () => {
      const first = await sut.givenChallenge({ additional: { first: 'yes' } });

      await expect(
        sut.challenges.create({ ...aCreateRequest(), additional: { second: 'yes' }, min: 2 }),
      ).rejects.toMatchObject({ reason: 'CHALLENGE_ALREADY_EXISTS' });
      await sut.tasks.drain();

      expect(sut.iac.validateCount).toBe(1);
      expect(sut.iac.upCount).toBe(0);
      expect(await sut.state.loadChallenge('chall-1')).toEqual(first);
    });

    it('should create once and throw CHALLENGE_ALREADY_EXISTS when two creates race for one id', async () => {
      const results = await Promise.allSettled([
        sut.challenges.create(aCreateRequest()),
        sut.challenges.create(aCreateRequest()),
      ]);

      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(results.find((r) => r.status === 'rejected')?.reason).toMatchObject({
        reason: 'CHALLENGE_ALREADY_EXISTS',
      });
      expect(sut.iac.validateCount).toBe(1);
    });

    it('should save nothing and pool nothing when validation fails', async () => {
      sut.iac.failNextValidate(new ScenarioInvalidError(DEFAULT_SCENARIO, 'preview failed'));

      await expect(sut.challenges.create({ ...aCreateRequest(), min: 2 })).rejects.toBeInstanceOf(
        ScenarioInvalidError,
      );
      await sut.tasks.drain();

      expect(await sut.state.listChallenges()).toEqual([]);
      expect(sut.iac.upCount).toBe(0);
    });

    it('should throw OCI_REFERENCE_NOT_FOUND and save nothing when the registry lacks the reference', async () => {
      await expect(
        sut.challenges.create({ ...aCreateRequest(), scenario: SCENARIO_V2 }),
      ).rejects.toMatchObject({ reason: 'OCI_REFERENCE_NOT_FOUND' });

      expect(await sut.state.listChallenges()).toEqual([]);
      expect(sut.iac.calls).toEqual([]);
    });
  });

  describe('retrieve', () => {
    it('should list claimed instances only when the challenge has a pool', async () => {
      await withInstances({ min: 2 });

      const view = await sut.challenges.retrieve('chall-1');

      expect(view.instances).toEqual(await sut.claimed());
      expect(view.instances.map((x) => x.sourceId)).toEqual(['source-1']);
      expect(await sut.pooled()).toHaveLength(2);
    });

    it('should throw CHALLENGE_NOT_FOUND when the challenge does not exist', async () => {
      await expect(sut.challenges.retrieve('nope')).rejects.toMatchObject({
        reason: 'CHALLENGE_NOT_FOUND',
      });
    });
  });

  describe('query', () => {
    it('should return every challenge with its claimed instances only when some are pooled', async () => {
      await withInstances({ id: 'chall-1', min: 1 });
      await sut.givenChallenge({ id: 'chall-2', min: 2 });

      const views = await collect(sut.challenges.query());

      expect(views.map((v) => [v.id, v.instances.length]).sort()).toEqual([
        ['chall-1', 1],
        ['chall-2', 0],
      ]);
    });

    it('should return nothing when there is no challenge', async () => {
      expect(await collect(sut.challenges.query())).toEqual([]);
    });

    it('should read the instances of many challenges in a few batches, in the listing order', async () => {
      // Written to the store directly: 1 100 creations through the service cost a validation each.
      const ids = Array.from({ length: 1100 }, (_, i) => `chall-${String(i).padStart(4, '0')}`);
      await Promise.all(ids.map((id) => sut.state.saveChallenge(aChallenge({ id }))));
      await sut.state.saveInstance(anInstance({ challengeId: 'chall-0000', sourceId: 'a' }));
      await sut.state.saveInstance(
        aPooledInstance({ challengeId: 'chall-0600', identity: anIdentity(2) }),
      );
      await sut.state.saveInstance(
        anInstance({ challengeId: 'chall-1099', identity: anIdentity(3), sourceId: 'b' }),
      );
      const one = vi.spyOn(sut.state, 'listInstances');
      const many = vi.spyOn(sut.state, 'listInstancesOf');
      const listed = (await sut.state.listChallenges()).map((c) => c.id);

      const views = await collect(sut.challenges.query());

      expect(views.map((v) => v.id)).toEqual(listed);
      expect(views.filter((v) => v.instances.length > 0)).toEqual([
        expect.objectContaining({
          id: 'chall-0000',
          instances: [anInstance({ challengeId: 'chall-0000', sourceId: 'a' })],
        }),
        expect.objectContaining({
          id: 'chall-1099',
          instances: [
            anInstance({ challengeId: 'chall-1099', identity: anIdentity(3), sourceId: 'b' }),
          ],
        }),
      ]);
      expect(one).not.toHaveBeenCalled();
      // Batches of about one size: none of them a short leftover.
      expect(many.mock.calls.map(([batch]) => batch.length)).toEqual([367, 367, 366]);
    });
  });

  describe('update', () => {
    it.each([
      [new Set<UpdatablePath>(['min']), -1, 0, ['MIN_NEGATIVE']],
      [new Set<UpdatablePath>(['max']), 0, -1, ['MAX_NEGATIVE']],
      [new Set<UpdatablePath>(['min', 'max']), 3, 2, ['INVERTED_BOUNDARIES']],
      [new Set<UpdatablePath>(['min']), 20000, 0, ['MIN_TOO_LARGE']],
    ] as [Set<UpdatablePath>, number, number, PoolerViolation[]][])(
      'should throw CHALLENGE_POOLER_OUT_OF_BOUNDS before any IaC call when the mask is %o with min=%i max=%i',
      async (mask, min, max, violations) => {
        const challenge = await withInstances({ min: 1, max: 5 });

        const calls = await iacCallsOf(async () => {
          await expect(
            sut.challenges.update(anUpdate(challenge, { mask, min, max })),
          ).rejects.toMatchObject({ reason: 'CHALLENGE_POOLER_OUT_OF_BOUNDS', violations });
        });

        expect(calls).toEqual([]);
        expect(await sut.state.loadChallenge('chall-1')).toEqual(challenge);
      },
    );

    it('should throw INVALID_ARGUMENT naming timeout before any work when the masked timeout puts until past the last Timestamp', async () => {
      const challenge = await withInstances({ timeoutMs: 10 * MINUTE });
      const [claimed] = await sut.claimed();
      const registryCalls = sut.oci.calls.length;

      const calls = await iacCallsOf(async () => {
        await expect(
          sut.challenges.update(
            anUpdate(challenge, { mask: new Set(['timeout']), timeoutMs: 315_576_000_000_000 }),
          ),
        ).rejects.toMatchObject({ reason: 'INVALID_ARGUMENT', field: 'timeout' });
      });

      expect(calls).toEqual([]);
      expect(sut.oci.calls.length).toBe(registryCalls);
      expect(await sut.state.loadChallenge('chall-1')).toEqual(challenge);
      expect((await sut.claimed())[0]).toEqual(claimed);
    });

    it('should keep the claimed instances until at the last Timestamp when the record holds a timeout past it', async () => {
      const challenge = await withInstances({ timeoutMs: 10 * MINUTE });
      // Stored before timeouts were checked; the update leaves it alone and recomputes until.
      await sut.state.saveChallenge({ ...challenge, timeoutMs: 315_576_000_000_000 });

      await sut.challenges.update(anUpdate(challenge, { mask: new Set(['min']), min: 0 }));

      const [claimed] = await sut.claimed();
      expect(claimed?.until?.toISOString()).toBe('9999-12-31T23:59:59.999Z');
    });

    it('should accept min above the stored max when only min is in the mask', async () => {
      const challenge = await sut.givenChallenge({ min: 0, max: 2 });

      const view = await sut.challenges.update(
        anUpdate(challenge, { mask: new Set(['min']), min: 3, max: -7 }),
      );

      expect(view).toMatchObject({ min: 3, max: 2 });
    });

    it('should ignore negative bounds outside the mask when checking', async () => {
      const challenge = await sut.givenChallenge();

      const view = await sut.challenges.update(
        anUpdate(challenge, { mask: new Set(['additional']), min: -1, max: -1 }),
      );

      expect(view).toMatchObject({ min: 0, max: 0 });
    });

    it('should throw CHALLENGE_NOT_FOUND when the challenge does not exist', async () => {
      await expect(
        sut.challenges.update(anUpdate({ ...aCreateRequest(), id: 'nope' })),
      ).rejects.toMatchObject({ reason: 'CHALLENGE_NOT_FOUND' });
    });

    it('should apply nothing but recompute claimed instances until when there is no mask', async () => {
      const challenge = await withInstances({ timeoutMs: 10 * MINUTE, min: 1 });
      const [before] = await sut.claimed();
      sut.clock.set(at(5 * MINUTE));

      const calls = await iacCallsOf(() =>
        sut.challenges.update({
          ...anUpdate(challenge),
          mask: undefined,
          scenario: SCENARIO_V2,
          timeoutMs: 60 * MINUTE,
          additional: { changed: 'yes' },
          min: 4,
          max: 9,
        }),
      );

      expect(calls).toEqual([]);
      expect(await sut.state.loadChallenge('chall-1')).toEqual(challenge);
      // A renewal without touching last_renew.
      expect(await sut.claimed()).toEqual([{ ...before, until: at(15 * MINUTE) }]);
      expect(await sut.pooled()).toHaveLength(1);
    });

    it('should recompute claimed instances until from the new until when until is in the mask', async () => {
      const challenge = await withInstances({ timeoutMs: 10 * MINUTE });
      sut.clock.set(at(MINUTE));

      const view = await sut.challenges.update(
        anUpdate(challenge, { mask: new Set(['until']), until: at(3 * MINUTE) }),
      );

      expect(view.until).toEqual(at(3 * MINUTE));
      expect(view.instances.map((x) => x.until)).toEqual([at(3 * MINUTE)]);
      expect((await sut.claimed()).map((x) => x.until)).toEqual([at(3 * MINUTE)]);
    });

    it('should clear the timeout and the instances until when timeout is masked but unset', async () => {
      const challenge = await withInstances({ timeoutMs: 10 * MINUTE });
      const update = anUpdate(challenge, { mask: new Set(['timeout']) });
      delete update.timeoutMs;

      const view = await sut.challenges.update(update);

      expect(view.timeoutMs).toBeUndefined();
      expect(await sut.state.loadChallenge('chall-1')).not.toHaveProperty('timeoutMs');
      expect((await sut.claimed())[0]).not.toHaveProperty('until');
    });

    it('should make no IaC call and keep the stored scenario when the new reference has the same digest', async () => {
      const challenge = await withInstances({ min: 1 });
      const alias = 'localhost:5000/scenarios/alias:latest';
      sut.oci.push(alias, sut.oci.digestOf(DEFAULT_SCENARIO));

      const calls = await iacCallsOf(() =>
        sut.challenges.update(
          anUpdate(challenge, { mask: new Set(['scenario']), scenario: alias }),
        ),
      );

      expect(calls).toEqual([]);
      expect((await sut.state.loadChallenge('chall-1'))?.scenario).toBe(DEFAULT_SCENARIO);
    });

    it('should make zero IaC calls when every masked field is unchanged', async () => {
      const challenge = await withInstances({
        timeoutMs: 10 * MINUTE,
        additional: { a: '1', b: '2' },
        min: 2,
        max: 5,
      });
      const instances = await sut.state.listInstances('chall-1');

      const calls = await iacCallsOf(() =>
        sut.challenges.update(
          anUpdate(challenge, {
            mask: new Set(['scenario', 'timeout', 'until', 'additional', 'min', 'max']),
            additional: { b: '2', a: '1' },
          }),
        ),
      );

      expect(calls).toEqual([]);
      expect(await sut.state.loadChallenge('chall-1')).toEqual(challenge);
      expect(await sut.state.listInstances('chall-1')).toEqual(instances);
    });

    describe('when the update leaves the record as it is', () => {
      /** What `work` asked of the registry, wrote as challenge records and published. */
      async function effectsOf(work: () => Promise<unknown>) {
        const saves = vi.spyOn(sut.state, 'saveChallenge');
        const calls = sut.oci.calls.length;
        const events = sut.events.published().length;
        await work();
        await sut.tasks.drain();
        return {
          registry: sut.oci.calls.slice(calls).map((c) => c.op),
          saves: saves.mock.calls.length,
          events: sut.events.published().slice(events),
        };
      }

      it('should neither ask the registry nor write the record nor publish challenge.updated when the additional is the stored one', async () => {
        const challenge = await sut.givenChallenge({ additional: { a: '1' } });

        let view: unknown;
        const effects = await effectsOf(async () => {
          view = await sut.challenges.update(
            anUpdate(challenge, { mask: new Set(['additional']), additional: { a: '1' } }),
          );
        });

        expect(effects).toEqual({ registry: [], saves: 0, events: [] });
        expect(view).toEqual({ ...challenge, instances: [] });
        expect(await sut.state.loadChallenge('chall-1')).toEqual(challenge);
      });

      it('should ask the registry whether the tag moved but write nothing when the scenario is the stored one at the same digest', async () => {
        const challenge = await sut.givenChallenge();

        const effects = await effectsOf(() =>
          sut.challenges.update(
            anUpdate(challenge, { mask: new Set(['scenario', 'additional', 'timeout', 'min']) }),
          ),
        );

        expect(effects).toEqual({ registry: ['fetchScenario'], saves: 0, events: [] });
        expect(await sut.state.loadChallenge('chall-1')).toEqual(challenge);
      });

      it('should still renew the claimed instances and publish challenge.updated when some are claimed', async () => {
        const challenge = await withInstances({ timeoutMs: 10 * MINUTE });
        const [before] = await sut.claimed();
        sut.clock.set(at(5 * MINUTE));

        const effects = await effectsOf(() =>
          sut.challenges.update(anUpdate(challenge, { mask: new Set(['timeout']) })),
        );

        expect(effects).toEqual({
          registry: [],
          saves: 0,
          events: [{ type: 'challenge.updated', challengeId: 'chall-1' }],
        });
        expect(await sut.claimed()).toEqual([{ ...before, until: at(15 * MINUTE) }]);
      });

      it('should publish challenge.updated when the pool moves', async () => {
        const challenge = await sut.givenChallenge({ min: 0 });

        const effects = await effectsOf(() =>
          sut.challenges.update(anUpdate(challenge, { mask: new Set(['min']), min: 1 })),
        );

        expect(effects.events).toEqual([{ type: 'challenge.updated', challengeId: 'chall-1' }]);
        expect(await sut.pooled()).toHaveLength(1);
      });

      it('should write the record with the new digest and publish challenge.updated when the stored tag moved', async () => {
        const challenge = await sut.givenChallenge();
        const digest = sut.oci.push(DEFAULT_SCENARIO, aDigest('moved'));

        const effects = await effectsOf(() =>
          sut.challenges.update(anUpdate(challenge, { mask: new Set(['scenario']) })),
        );

        expect(effects.saves).toBe(1);
        expect(effects.events).toEqual([{ type: 'challenge.updated', challengeId: 'chall-1' }]);
        expect((await sut.state.loadChallenge('chall-1'))?.digest).toBe(digest);
      });

      it('should pull the scenario before the lock and write the record when the additional changes', async () => {
        const challenge = await sut.givenChallenge({ additional: { a: '1' } });

        const effects = await effectsOf(() =>
          sut.challenges.update(
            anUpdate(challenge, { mask: new Set(['additional']), additional: { a: '2' } }),
          ),
        );

        expect(effects).toEqual({
          registry: ['fetchScenario'],
          saves: 1,
          events: [{ type: 'challenge.updated', challengeId: 'chall-1' }],
        });
      });
    });

    it('should update every instance in place with the same identity when the scenario digest changes', async () => {
      const challenge = await withInstances({ min: 1, additional: { a: 'chall' } });
      const before = await sut.state.listInstances('chall-1');
      const ups = upsOf(before.map((x) => x.identity));
      const digest = sut.oci.push(SCENARIO_V2, aDigest('v2'));

      const calls = await iacCallsOf(() =>
        sut.challenges.update(
          anUpdate(challenge, { mask: new Set(['scenario']), scenario: SCENARIO_V2 }),
        ),
      );

      expect(calls.filter((c) => c.op === 'validate')).toHaveLength(1);
      expect(calls.filter((c) => c.op === 'destroy')).toEqual([]);
      expect(calls.filter((c) => c.op === 'up').map((c) => c.op === 'up' && c.identity)).toEqual(
        expect.arrayContaining(before.map((x) => x.identity)),
      );
      expect(calls.filter((c) => c.op === 'up')).toHaveLength(2);
      const after = await sut.state.listInstances('chall-1');
      expect(after.map((x) => x.identity).sort()).toEqual(before.map((x) => x.identity).sort());
      for (const instance of after)
        expect(sut.iac.stackOf('chall-1', instance.identity)).toMatchObject({
          scenarioDigest: digest,
          ups: (ups.get(instance.identity) ?? 0) + 1, // updated, not recreated
        });
      expect((await sut.state.loadChallenge('chall-1'))?.scenario).toBe(SCENARIO_V2);
      expect((await sut.instances.retrieve('chall-1', 'source-1')).additional).toEqual({
        own: 'x',
      });
    });

    it('should destroy then up each instance under the same identity when the strategy is recreate', async () => {
      const challenge = await withInstances({ min: 1 });
      const before = await sut.state.listInstances('chall-1');
      const digest = sut.oci.push(SCENARIO_V2, aDigest('v2'));

      const calls = await iacCallsOf(() =>
        sut.challenges.update(
          anUpdate(challenge, {
            mask: new Set(['scenario']),
            scenario: SCENARIO_V2,
            updateStrategy: 'recreate',
          }),
        ),
      );

      for (const { identity } of before) {
        const ops = calls
          .filter((c) => c.op !== 'validate' && c.identity === identity)
          .map((c) => c.op);
        expect(ops).toEqual(['destroy', 'up']);
        // Recreated from scratch: one `up` on the new stack.
        expect(sut.iac.stackOf('chall-1', identity)).toMatchObject({
          scenarioDigest: digest,
          ups: 1,
        });
      }
      expect((await sut.state.listInstances('chall-1')).map((x) => x.identity).sort()).toEqual(
        before.map((x) => x.identity).sort(),
      );
    });

    it('should move each instance to a new identity and keep the claim when the strategy is blue_green', async () => {
      const challenge = await withInstances({ min: 1, timeoutMs: 10 * MINUTE });
      const [claimedBefore] = await sut.claimed();
      const [pooledBefore] = await sut.pooled();
      const digest = sut.oci.push(SCENARIO_V2, aDigest('v2'));
      sut.clock.set(at(MINUTE));

      const view = await sut.challenges.update(
        anUpdate(challenge, {
          mask: new Set(['scenario']),
          scenario: SCENARIO_V2,
          updateStrategy: 'blue_green',
        }),
      );
      await sut.tasks.drain();

      const claimed = await sut.instances.retrieve('chall-1', 'source-1');
      expect(claimed.identity).not.toBe(claimedBefore?.identity);
      expect(claimed).toEqual({
        ...claimedBefore,
        identity: claimed.identity,
        until: at(11 * MINUTE),
        connectionInfo: fakeConnectionInfo(claimed.identity, { own: 'x' }),
      });
      expect(view.instances).toEqual([claimed]);
      const pooled = await sut.pooled();
      expect(pooled).toHaveLength(1);
      expect(pooled[0]?.identity).not.toBe(pooledBefore?.identity);
      // Old stacks and records are gone; the new ones run the new scenario.
      expect(sut.iac.stackOf('chall-1', claimedBefore?.identity ?? '')).toBeUndefined();
      expect(sut.iac.stackOf('chall-1', pooledBefore?.identity ?? '')).toBeUndefined();
      expect(sut.iac.stacksOf('chall-1').map((s) => s.scenarioDigest)).toEqual([digest, digest]);
      expect(await sut.state.listInstances('chall-1')).toHaveLength(2);
    });

    // The challenge keeps the digest it was validated with, so a tag re-pushed
    // under the stored reference is seen as a change.
    it('should update instances when the stored tag is re-pushed with a new digest', async () => {
      const challenge = await withInstances({ min: 1 });
      const digest = sut.oci.push(DEFAULT_SCENARIO, aDigest('re-pushed'));

      await sut.challenges.update(anUpdate(challenge, { mask: new Set(['scenario']) }));

      for (const instance of await sut.state.listInstances('chall-1'))
        expect(sut.iac.stackOf('chall-1', instance.identity)?.scenarioDigest).toBe(digest);
    });

    it('should update every instance with the merged additional when the additional changes', async () => {
      const challenge = await withInstances({ min: 1, additional: { a: 'old' } });
      const before = await sut.state.listInstances('chall-1');
      const ups = upsOf(before.map((x) => x.identity));

      const view = await sut.challenges.update(
        anUpdate(challenge, { mask: new Set(['additional']), additional: { a: 'new' } }),
      );

      expect(view.additional).toEqual({ a: 'new' });
      for (const instance of before) {
        const merged: Record<string, string> = instance.sourceId
          ? { a: 'new', own: 'x' }
          : { a: 'new' };
        expect(sut.iac.stackOf('chall-1', instance.identity)).toMatchObject({
          additional: merged,
          ups: (ups.get(instance.identity) ?? 0) + 1,
        });
        expect((await sut.state.loadInstance('chall-1', instance.identity))?.connectionInfo).toBe(
          fakeConnectionInfo(instance.identity, merged),
        );
      }
      expect(sut.iac.validateCount).toBe(1); // the scenario did not change: no new validation
    });

    it.each([
      // mask, min, max -> pooled after
      [new Set<UpdatablePath>(['min']), 4, 0, 4], // grow: 2 more
      [new Set<UpdatablePath>(['min']), 1, 0, 1], // shrink: 1 less
      [new Set<UpdatablePath>(['min']), 0, 0, 0], // flush the pool
      [new Set<UpdatablePath>(['max']), 2, 2, 1], // max 2 with 1 claimed: room for 1
      [new Set<UpdatablePath>(['min', 'max']), 3, 6, 3], // max far: grow to min
    ] as [Set<UpdatablePath>, number, number, number][])(
      'should resize the pool per the delta when the mask is %o with min=%i max=%i',
      async (mask, min, max, pooledAfter) => {
        const challenge = await withInstances({ min: 2 });
        const before = await sut.pooled();
        const [claimed] = await sut.claimed();

        await sut.challenges.update(anUpdate(challenge, { mask, min, max }));
        await sut.tasks.drain();

        const after = await sut.pooled();
        expect(after).toHaveLength(pooledAfter);
        const kept = before.filter((x) => after.some((y) => y.identity === x.identity));
        expect(kept).toHaveLength(Math.min(before.length, pooledAfter));
        // Stacks follow records exactly: deleted pooled instances were destroyed.
        expect(
          sut.iac
            .stacksOf('chall-1')
            .map((s) => s.identity)
            .sort(),
        ).toEqual([claimed?.identity, ...after.map((x) => x.identity)].sort());
        expect(await sut.claimed()).toEqual([claimed]);
      },
    );

    it('should not spin up pooled instances when the challenge is expired', async () => {
      const challenge = await sut.givenChallenge({ until: at(MINUTE) });
      sut.clock.set(at(2 * MINUTE));

      const calls = await iacCallsOf(() =>
        sut.challenges.update(anUpdate(challenge, { mask: new Set(['min']), min: 2 })),
      );

      expect(calls).toEqual([]);
      expect(await sut.pooled()).toEqual([]);
    });

    it('should keep the challenge unchanged when the new scenario fails validation', async () => {
      const challenge = await withInstances({ min: 1 });
      sut.oci.push(SCENARIO_V2, aDigest('v2'));
      sut.iac.failNextValidate(new ScenarioInvalidError(SCENARIO_V2, 'preview failed'));

      const calls = await iacCallsOf(async () => {
        await expect(
          sut.challenges.update(
            anUpdate(challenge, {
              mask: new Set(['scenario', 'min']),
              scenario: SCENARIO_V2,
              min: 3,
            }),
          ),
        ).rejects.toBeInstanceOf(ScenarioInvalidError);
      });

      expect(calls.map((c) => c.op)).toEqual(['validate']);
      expect(await sut.state.loadChallenge('chall-1')).toEqual(challenge);
      expect(await sut.pooled()).toHaveLength(1);
    });

    it('should throw OCI_REFERENCE_MALFORMED before any work when the masked scenario is malformed', async () => {
      const challenge = await sut.givenChallenge();
      const registryCalls = sut.oci.calls.length;

      await expect(
        sut.challenges.update(
          anUpdate(challenge, { mask: new Set(['scenario']), scenario: 'not a reference' }),
        ),
      ).rejects.toMatchObject({ reason: 'OCI_REFERENCE_MALFORMED' });
      expect(sut.oci.calls.length).toBe(registryCalls);
    });

    it('should not resurrect an instance when it is deleted while the update waits for it', async () => {
      const challenge = await withInstances({ timeoutMs: 10 * MINUTE });
      const [claimed] = await sut.claimed();
      sut.iac.holdDestroys();
      // DeleteInstance holds the instance lock through its (long) destroy.
      const deleting = sut.instances.delete('chall-1', 'source-1');
      await within(2_000, sut.iac.whenDestroysHeld(1), 'the destroy');

      const updating = sut.challenges.update(
        anUpdate(challenge, { mask: new Set(['additional']), additional: { a: 'new' } }),
      );
      await letPendingWorkRun(0);
      sut.iac.releaseDestroys();
      await within(2_000, Promise.all([deleting, updating]), 'the delete and the update');

      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      expect(sut.iac.stackOf('chall-1', claimed?.identity ?? '')).toBeUndefined();
      await expect(sut.instances.retrieve('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });

    it('should keep what a claim wrote when the update waited for the claim to finish', async () => {
      // max = 1: no refill, so the only `up` held is the claim's in-place update.
      const challenge = await sut.givenChallenge({ min: 1, max: 1, timeoutMs: 10 * MINUTE });
      sut.clock.set(at(MINUTE));
      sut.iac.holdUps();
      const claiming = sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: { own: 'x' },
      });
      await within(2_000, sut.iac.whenHeld(1), 'the in-place update of the claim');

      sut.clock.set(at(2 * MINUTE));
      const updating = sut.challenges.update(anUpdate(challenge, { mask: undefined }));
      await letPendingWorkRun(0);
      sut.iac.releaseUps();
      const [claimed] = await within(2_000, Promise.all([claiming, updating]), 'claim and update');

      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual({
        ...claimed,
        until: at(12 * MINUTE), // renewed by the update
      });
      expect(claimed.additional).toEqual({ own: 'x' });
      expect(claimed.lastRenew).toEqual(at(MINUTE));
    });

    it('should throw and still update the others when one instance update fails', async () => {
      const challenge = await withInstances({ min: 1 });
      const [claimed] = await sut.claimed();
      const [pooled] = await sut.pooled();
      sut.oci.push(SCENARIO_V2, aDigest('v2'));
      sut.iac.failNextUpOf(claimed?.identity ?? '');

      await expect(
        sut.challenges.update(
          anUpdate(challenge, { mask: new Set(['scenario']), scenario: SCENARIO_V2 }),
        ),
      ).rejects.toBeInstanceOf(IacOperationError);

      expect(sut.iac.stackOf('chall-1', pooled?.identity ?? '')?.scenarioDigest).toBe(
        aDigest('v2'),
      );
    });
  });

  describe('delete', () => {
    it('should destroy every claimed and pooled instance and remove the challenge when all succeed', async () => {
      await withInstances({ min: 2 });

      await sut.challenges.delete('chall-1');

      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      await expect(sut.challenges.retrieve('chall-1')).rejects.toMatchObject({
        reason: 'CHALLENGE_NOT_FOUND',
      });
    });

    it('should throw CHALLENGE_NOT_FOUND when the challenge does not exist', async () => {
      await expect(sut.challenges.delete('nope')).rejects.toMatchObject({
        reason: 'CHALLENGE_NOT_FOUND',
      });
    });

    it('should keep the challenge with the failed instance only when one destroy fails', async () => {
      await withInstances({ min: 2 });
      const [claimed] = await sut.claimed();
      sut.iac.failDestroyOf(claimed?.identity ?? '');

      await expect(sut.challenges.delete('chall-1')).rejects.toBeInstanceOf(IacOperationError);

      const view = await sut.challenges.retrieve('chall-1');
      expect(view.instances).toEqual([claimed]);
      expect(await sut.state.listInstances('chall-1')).toEqual([claimed]);
      expect(sut.iac.stacksOf('chall-1').map((s) => s.identity)).toEqual([claimed?.identity]);
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(claimed);
    });

    it('should remove the challenge on retry when the destroy failure has cleared', async () => {
      await withInstances({ min: 2 });
      const [claimed] = await sut.claimed();
      sut.iac.failDestroyOf(claimed?.identity ?? '');
      await expect(sut.challenges.delete('chall-1')).rejects.toBeInstanceOf(IacOperationError);
      sut.iac.clearDestroyFailure(claimed?.identity ?? '');

      await sut.challenges.delete('chall-1');

      expect(await sut.state.listChallenges()).toEqual([]);
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
    });
  });
});

/** A valid create request for `chall-1` with fixed defaults and no pool. */
function aCreateRequest(): Challenge {
  return { id: 'chall-1', scenario: DEFAULT_SCENARIO, additional: {}, min: 0, max: 0 };
}

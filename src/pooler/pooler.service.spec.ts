import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { T0 } from '../../test/support/builders';
import { fakeConnectionInfo } from '../../test/support/fakes/fake-iac-engine';
import {
  anUpdate,
  collect,
  servicesUnderTest,
  within,
  type ServicesUnderTest,
} from '../../test/support/services-under-test';
import { lockKeys } from '../shared/domain';
import { IacOperationError } from '../shared/errors';
import { PoolLimits } from './pool-limits';

const MINUTE = 60_000;
const at = (ms: number): Date => new Date(T0.getTime() + ms);

describe('PoolerService', () => {
  let sut: ServicesUnderTest;

  beforeEach(() => {
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    sut = servicesUnderTest();
  });
  afterEach(async () => {
    sut.iac.releaseUps();
    await sut.tasks.drain();
    vi.restoreAllMocks();
  });

  describe('fill', () => {
    it('should pool min instances invisible to the API when a challenge is created with min=2', async () => {
      await sut.givenChallenge({ min: 2, additional: { a: 'chall' } });

      const pooled = await sut.pooled();
      expect(pooled).toHaveLength(2);
      for (const instance of pooled) {
        expect(instance).toEqual({
          challengeId: 'chall-1',
          identity: instance.identity,
          since: T0,
          lastRenew: T0,
          connectionInfo: fakeConnectionInfo(instance.identity, { a: 'chall' }),
          flags: ['CTF{fake-flag}'],
          additional: {},
        });
        // A pooled stack gets the challenge additional alone.
        expect(sut.iac.stackOf('chall-1', instance.identity)?.additional).toEqual({ a: 'chall' });
      }
      expect((await sut.challenges.retrieve('chall-1')).instances).toEqual([]);
      expect((await collect(sut.challenges.query()))[0]?.instances).toEqual([]);
      expect(await collect(sut.instances.query('source-1'))).toEqual([]);
      await expect(sut.instances.retrieve('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });

    it('should not spin up anything when the challenge is created already expired', async () => {
      sut.clock.set(at(MINUTE));
      await sut.givenChallenge({ min: 2, until: T0 });

      expect(sut.iac.upCount).toBe(0);
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
    });

    it('should not pool beyond max when min=3 and max=2', async () => {
      // The inversion is refused only when both bounds come in one request.
      const challenge = await sut.givenChallenge({ min: 0, max: 2 });
      await sut.challenges.update(anUpdate(challenge, { mask: new Set(['min']), min: 3 }));
      await sut.tasks.drain();

      expect(await sut.pooled()).toHaveLength(2);
      expect(sut.iac.stacksOf('chall-1')).toHaveLength(2);
    });
  });

  describe('spinUp', () => {
    it('should admit only what the bounds allow and destroy the rest when too many run at once', async () => {
      const challenge = await sut.givenChallenge({ min: 0, max: 4 });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });
      await sut.state.saveChallenge({ ...challenge, min: 3 });
      // 1 claimed + 0 pooled: the pool can hold 3 at most (max − claimed).
      sut.iac.holdUps();

      sut.pooler.spinUp('chall-1', 5);
      await within(2_000, sut.iac.whenHeld(5), '5 concurrent spin-ups');
      sut.iac.releaseUps();
      await sut.tasks.drain();

      expect(await sut.pooled()).toHaveLength(3);
      // No orphan: every stack left has a record.
      expect(sut.iac.stacksOf('chall-1')).toHaveLength(4);
    });

    it('should run no up when the pool filled while the spin-up waited in line', async () => {
      await sut.givenChallenge({ min: 2 });
      const ups = sut.iac.upCount;

      sut.pooler.spinUp('chall-1', 3);
      await sut.tasks.drain();

      expect(sut.iac.upCount).toBe(ups);
      expect(await sut.pooled()).toHaveLength(2);
    });

    it('should queue no more spin-ups of a challenge than the largest pool', async () => {
      sut = servicesUnderTest(T0, new PoolLimits(3, 16));
      const challenge = await sut.givenChallenge({ min: 0 });
      await sut.state.saveChallenge({ ...challenge, min: 3 });
      sut.iac.holdUps();

      sut.pooler.spinUp('chall-1', 10);
      sut.pooler.spinUp('chall-1', 10);
      await within(2_000, sut.iac.whenHeld(3), '3 spin-ups');
      sut.iac.releaseUps();
      await sut.tasks.drain();

      expect(sut.iac.upCount).toBe(3);
      expect(await sut.pooled()).toHaveLength(3);
    });

    it('should run spin-ups a few at a time, challenges taking turns', async () => {
      sut = servicesUnderTest(T0, new PoolLimits(100, 1));
      for (const [id, min] of [
        ['a', 4],
        ['b', 1],
      ] as const) {
        const challenge = await sut.givenChallenge({ id, min: 0 });
        await sut.state.saveChallenge({ ...challenge, min });
      }
      sut.iac.holdUps();

      sut.pooler.spinUp('a', 4);
      sut.pooler.spinUp('b', 1);
      await within(2_000, sut.iac.whenHeld(1), 'the first spin-up');
      // Give the others every chance to start: they must still be waiting in line.
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      expect(sut.iac.upCount).toBe(1);
      sut.iac.releaseUps();
      await sut.tasks.drain();

      const order = sut.iac.calls.flatMap((c) => (c.op === 'up' ? [c.challengeId] : []));
      expect(order).toEqual(['a', 'a', 'b', 'a', 'a']);
      expect(await sut.pooled('a')).toHaveLength(4);
      expect(await sut.pooled('b')).toHaveLength(1);
    });

    it('should record nothing and destroy the stack when the challenge is deleted during up', async () => {
      const challenge = await sut.givenChallenge();
      await sut.state.saveChallenge({ ...challenge, min: 1 });
      sut.iac.holdUps();
      sut.pooler.spinUp('chall-1', 1);
      await within(2_000, sut.iac.whenHeld(1), 'the spin-up');

      await sut.challenges.delete('chall-1');
      sut.iac.releaseUps();
      await sut.tasks.drain();

      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
    });

    it('should record nothing and destroy the stack when the challenge expires during up', async () => {
      const challenge = await sut.givenChallenge({ until: at(MINUTE) });
      await sut.state.saveChallenge({ ...challenge, min: 1 });
      sut.iac.holdUps();
      sut.pooler.spinUp('chall-1', 1);
      await within(2_000, sut.iac.whenHeld(1), 'the spin-up');

      sut.clock.set(at(2 * MINUTE));
      sut.iac.releaseUps();
      await sut.tasks.drain();

      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
    });

    it('should swallow the error and record nothing when up fails and no retry is left', async () => {
      await sut.givenChallenge();
      sut.pooler.retryDelaysMs = [];
      sut.iac.failNextUp();

      sut.pooler.spinUp('chall-1', 1);
      await sut.tasks.drain();

      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
    });

    it('should retry a failed spin-up and fill the pool when the next attempt succeeds', async () => {
      sut.pooler.retryDelaysMs = [0];
      sut.iac.failNextUp();
      await sut.givenChallenge({ min: 1 });
      await sut.tasks.drain();

      expect(await sut.pooled()).toHaveLength(1);
      expect(sut.iac.stacksOf('chall-1')).toHaveLength(1);
    });
  });

  describe('claim', () => {
    it('should hand out a pooled instance and refill to min when a source creates an instance', async () => {
      await sut.givenChallenge({ min: 2, timeoutMs: 10 * MINUTE });
      const before = await sut.pooled();
      sut.clock.set(at(MINUTE));

      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });

      // One of the pooled instances (upstream took the first in identity order; we start at a
      // random one so that concurrent claimers do not all race for the same).
      const picked = before.find((p) => p.identity === claimed.identity);
      expect(picked).toBeDefined();
      expect(claimed).toEqual({
        ...picked,
        sourceId: 'source-1',
        since: T0, // pool provisioning time
        lastRenew: at(MINUTE),
        until: at(11 * MINUTE),
      });
      await sut.tasks.drain();
      expect(await sut.pooled()).toHaveLength(2);
      expect(sut.iac.upCount).toBe(3); // 2 pooled, 1 refill: no fresh deployment
      expect(await sut.claimed()).toEqual([claimed]);
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(claimed);
    });

    it("should save a plain claim as the source's within the claim itself, under one lock of the instance", async () => {
      await sut.givenChallenge({ min: 1, timeoutMs: 10 * MINUTE });
      const [pooled] = await sut.pooled();
      sut.clock.set(at(MINUTE));
      const claims = vi.spyOn(sut.state, 'claim');
      const saves = vi.spyOn(sut.state, 'saveInstance');
      const locks = vi.spyOn(sut.lock, 'withWriteLock');

      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });

      const record = {
        ...pooled,
        sourceId: 'source-1',
        lastRenew: at(MINUTE),
        until: at(11 * MINUTE),
      };
      expect(claimed).toEqual(record);
      expect(claims).toHaveBeenCalledTimes(1);
      expect(claims).toHaveBeenCalledWith('chall-1', pooled?.identity, 'source-1', { record });
      // No second write of the claimed record: the claim made it.
      expect(saves.mock.calls.filter(([saved]) => saved.identity === pooled?.identity)).toEqual([]);
      const instanceKey = lockKeys.instance('chall-1', pooled?.identity ?? '');
      expect(locks.mock.calls.filter(([key]) => key === instanceKey)).toHaveLength(1);
      expect(await sut.state.loadInstance('chall-1', pooled?.identity ?? '')).toEqual(record);
    });

    it('should read a candidate without probes under the instance lock only, and hand out the record as it is there', async () => {
      await sut.givenChallenge({ min: 1 });
      const [pooled] = await sut.pooled();
      const identity = pooled?.identity ?? '';
      const key = lockKeys.instance('chall-1', identity);
      // The janitor resuming a redeployment holds the instance lock alone, and rewrites it.
      let release!: () => void;
      let held!: () => void;
      const holding = new Promise<void>((resolve) => (held = resolve));
      const redeploying = sut.lock.withWriteLock(key, () => {
        held();
        return new Promise<void>((resolve) => (release = resolve));
      });
      await holding;
      const loads = vi.spyOn(sut.state, 'loadInstance');
      const locks = vi.spyOn(sut.lock, 'withWriteLock');
      const creating = sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      await within(
        5_000,
        vi.waitUntil(() => locks.mock.calls.some(([k]) => k === key)),
        'the claim waiting for the instance lock',
      );
      expect(loads).not.toHaveBeenCalled();
      await sut.state.saveInstance({ ...pooled!, connectionInfo: 'nc redeployed 1' });
      release();
      await redeploying;

      const claimed = await creating;
      expect(claimed.connectionInfo).toBe('nc redeployed 1');
      expect(loads).toHaveBeenCalledTimes(1);
      expect((await sut.instances.retrieve('chall-1', 'source-1')).connectionInfo).toBe(
        'nc redeployed 1',
      );
    });

    it('should probe a candidate outside the instance lock, then hand out its record as it is under the lock', async () => {
      await sut.givenChallenge({ min: 1 });
      const [pooled] = await sut.pooled();
      const probes = ['tcp://127.0.0.1:1'];
      await sut.state.saveInstance({ ...pooled!, readiness: probes });
      let answer!: () => void;
      const answered = new Promise<void>((resolve) => (answer = resolve));
      let probing!: () => void;
      const probed = new Promise<void>((resolve) => (probing = resolve));
      const waits = vi.spyOn(sut.readiness, 'waitReady').mockImplementation(async () => {
        probing();
        await answered;
        return undefined;
      });
      const creating = sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      await within(5_000, probed, 'the probe');
      // The lock is free while the probe runs: a redeployment can take it and rewrite the record.
      await within(
        5_000,
        sut.lock.withWriteLock(lockKeys.instance('chall-1', pooled!.identity), () =>
          sut.state.saveInstance({
            ...pooled!,
            readiness: probes,
            connectionInfo: 'nc redeployed 2',
          }),
        ),
        'the instance lock during the probe',
      );
      answer();

      const claimed = await creating;
      expect(claimed.connectionInfo).toBe('nc redeployed 2');
      expect(waits).toHaveBeenCalledTimes(1);
      expect(waits.mock.calls[0]?.[0]).toEqual(probes);
      expect((await sut.instances.retrieve('chall-1', 'source-1')).connectionInfo).toBe(
        'nc redeployed 2',
      );
    });

    // upstream's ComputeUntil, on a pooled instance claimed at now = T0 + 1 min.
    it.each([
      // until, timeout -> instance until
      [undefined, undefined, undefined], // neither: never expires
      [undefined, 10 * MINUTE, at(11 * MINUTE)], // timeout only: now + timeout
      [at(60 * MINUTE), undefined, at(60 * MINUTE)], // until only: the challenge's until
      [at(60 * MINUTE), 10 * MINUTE, at(11 * MINUTE)], // both, timeout first
      [at(5 * MINUTE), 10 * MINUTE, at(5 * MINUTE)], // both, until first
    ])(
      'should compute until when a pooled instance is claimed with until=%s and timeout=%s',
      async (until, timeoutMs, expected) => {
        await sut.givenChallenge({
          min: 1,
          ...(until === undefined ? {} : { until }),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        });
        const [pooled] = await sut.pooled();
        sut.clock.set(at(MINUTE));

        const claimed = await sut.instances.create({
          challengeId: 'chall-1',
          sourceId: 'source-1',
          additional: {},
        });

        expect(claimed.identity).toBe(pooled?.identity);
        expect(claimed.until).toEqual(expected);
        expect((await sut.instances.retrieve('chall-1', 'source-1')).until).toEqual(expected);
      },
    );

    it('should claim each pooled instance once when N sources claim a pool of N concurrently', async () => {
      const n = 8;
      await sut.givenChallenge({ min: n });
      const pool = (await sut.pooled()).map((x) => x.identity);
      // Refills wait at the gate, so only the original pool can be claimed.
      sut.iac.holdUps();

      const claimed = await within(
        2_000,
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            sut.instances.create({
              challengeId: 'chall-1',
              sourceId: `source-${i}`,
              additional: {},
            }),
          ),
        ),
        `${n} concurrent claims`,
      );

      expect(claimed.map((x) => x.identity).sort()).toEqual([...pool].sort());
      expect(new Set(claimed.map((x) => x.sourceId)).size).toBe(n);
      for (const instance of claimed)
        expect((await sut.instances.retrieve('chall-1', instance.sourceId ?? '')).identity).toBe(
          instance.identity,
        );
      sut.iac.releaseUps();
      await sut.tasks.drain();
      expect(await sut.pooled()).toHaveLength(n);
      expect(await sut.claimed()).toHaveLength(n);
    });

    it('should update the pooled instance in place with the merged additional when the request has some', async () => {
      await sut.givenChallenge({ min: 1, additional: { a: 'chall', b: 'chall' } });
      const [pooled] = await sut.pooled();
      const identity = pooled?.identity ?? '';

      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: { b: 'instance' },
      });

      const merged = { a: 'chall', b: 'instance' };
      expect(claimed.identity).toBe(identity);
      expect(claimed.additional).toEqual({ b: 'instance' });
      expect(claimed.connectionInfo).toBe(fakeConnectionInfo(identity, merged));
      expect(sut.iac.stackOf('chall-1', identity)).toMatchObject({ additional: merged, ups: 2 });
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(claimed);
    });

    it('should destroy the instance and throw when the in-place update of a claim fails', async () => {
      await sut.givenChallenge({ min: 1 });
      const [pooled] = await sut.pooled();
      sut.iac.failNextUpOf(pooled?.identity ?? '', new IacOperationError('up', 'claim'));

      await expect(
        sut.instances.create({
          challengeId: 'chall-1',
          sourceId: 'source-1',
          additional: { b: 'instance' },
        }),
      ).rejects.toBeInstanceOf(IacOperationError);

      expect(sut.iac.stackOf('chall-1', pooled?.identity ?? '')).toBeUndefined();
      await expect(sut.instances.retrieve('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
      await sut.tasks.drain();
      expect((await sut.pooled()).map((x) => x.identity)).not.toContain(pooled?.identity);
    });

    it('should deploy a fresh instance without refilling when max is reached', async () => {
      await sut.givenChallenge({ min: 1, max: 1 });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });
      await sut.tasks.drain();
      expect(await sut.pooled()).toHaveLength(0);

      // `max` limits the pool only, never fresh creations.
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-2', additional: {} });
      await sut.tasks.drain();

      expect(await sut.claimed()).toHaveLength(2);
      expect(await sut.pooled()).toHaveLength(0);
    });
  });
});

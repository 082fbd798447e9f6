import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { letPendingWorkRun } from '../../test/contract/helpers';
import { T0 } from '../../test/support/builders';
import { fakeConnectionInfo } from '../../test/support/fakes/fake-iac-engine';
import {
  collect,
  servicesUnderTest,
  within,
  type ServicesUnderTest,
} from '../../test/support/services-under-test';
import { InstanceAlreadyExistsError, IacOperationError } from '../shared/errors';

const MINUTE = 60_000;
const at = (ms: number): Date => new Date(T0.getTime() + ms);

describe('InstanceManagerService', () => {
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

  describe('create', () => {
    // upstream's ComputeUntil, on a fresh instance created at now = T0 + 1 min.
    it.each([
      // until, timeout -> instance until
      [undefined, undefined, undefined], // neither: never expires
      [undefined, 10 * MINUTE, at(11 * MINUTE)], // timeout only: now + timeout
      [at(60 * MINUTE), undefined, at(60 * MINUTE)], // until only: the challenge's until
      [at(60 * MINUTE), 10 * MINUTE, at(11 * MINUTE)], // both, timeout first: now + timeout
      [at(5 * MINUTE), 10 * MINUTE, at(5 * MINUTE)], // both, until first: until
    ])(
      'should compute until when the challenge has until=%s and timeout=%s',
      async (until, timeoutMs, expected) => {
        await sut.givenChallenge({
          ...(until === undefined ? {} : { until }),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        });
        sut.clock.set(at(MINUTE));

        const created = await sut.instances.create({
          challengeId: 'chall-1',
          sourceId: 'source-1',
          additional: {},
        });

        expect(created.until).toEqual(expected);
        expect((await sut.instances.retrieve('chall-1', 'source-1')).until).toEqual(expected);
      },
    );

    it('should deploy a claimed instance with the merged additional when the pool is empty', async () => {
      await sut.givenChallenge({ additional: { a: 'chall', b: 'chall' } });
      sut.clock.set(at(MINUTE));

      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: { b: 'instance' },
      });

      const merged = { a: 'chall', b: 'instance' };
      expect(created).toEqual({
        challengeId: 'chall-1',
        identity: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown,
        sourceId: 'source-1',
        since: at(MINUTE),
        lastRenew: at(MINUTE),
        connectionInfo: fakeConnectionInfo(created.identity, merged),
        flags: ['CTF{fake-flag}'],
        additional: { b: 'instance' },
      });
      expect(sut.iac.stackOf('chall-1', created.identity)?.additional).toEqual(merged);
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(created);
    });

    it('should throw CHALLENGE_EXPIRED without deploying when the challenge until has passed', async () => {
      await sut.givenChallenge({ until: at(MINUTE) });
      sut.clock.set(at(MINUTE + 1));

      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toMatchObject({ reason: 'CHALLENGE_EXPIRED' });
      expect(sut.iac.upCount).toBe(0);
      expect(await sut.claimed()).toEqual([]);
    });

    it('should throw INVALID_ARGUMENT naming timeout without pulling or deploying when the recorded timeout puts until past the last Timestamp', async () => {
      const challenge = await sut.givenChallenge();
      // Stored before timeouts were checked; the API now refuses it.
      await sut.state.saveChallenge({ ...challenge, timeoutMs: 315_576_000_000_000 });
      const registryCalls = sut.oci.calls.length;

      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toMatchObject({ reason: 'INVALID_ARGUMENT', field: 'timeout' });
      expect(sut.iac.upCount).toBe(0);
      expect(sut.oci.calls.length).toBe(registryCalls);
      expect(await sut.claimed()).toEqual([]);
    });

    it('should claim no pooled instance when the recorded timeout puts until past the last Timestamp', async () => {
      const challenge = await sut.givenChallenge({ min: 1 });
      await sut.tasks.drain();
      const pooled = await sut.pooled();
      expect(pooled).toHaveLength(1);
      await sut.state.saveChallenge({ ...challenge, timeoutMs: 315_576_000_000_000 });

      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toMatchObject({ reason: 'INVALID_ARGUMENT', field: 'timeout' });
      expect(await sut.pooled()).toEqual(pooled);
      expect(await sut.claimed()).toEqual([]);
    });

    it('should throw CHALLENGE_NOT_FOUND when the challenge does not exist', async () => {
      await expect(
        sut.instances.create({ challengeId: 'nope', sourceId: 'source-1', additional: {} }),
      ).rejects.toMatchObject({ reason: 'CHALLENGE_NOT_FOUND' });
      expect(sut.iac.upCount).toBe(0);
    });

    it('should throw INSTANCE_ALREADY_EXISTS when the source already has an instance', async () => {
      await sut.givenChallenge();
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });

      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toMatchObject({ reason: 'INSTANCE_ALREADY_EXISTS' });
      expect(sut.iac.upCount).toBe(1);
    });

    it('should create exactly one instance when 20 creates for the same source run concurrently', async () => {
      await sut.givenChallenge();
      sut.iac.holdUps();

      const results = Promise.allSettled(
        Array.from({ length: 20 }, () =>
          sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
        ),
      );
      await within(2_000, sut.iac.whenHeld(1), 'the first up');
      await letPendingWorkRun(0);
      // The others wait on the source lock: no second deployment is even started.
      expect(sut.iac.upCount).toBe(1);
      sut.iac.releaseUps();
      const settled = await within(2_000, results, 'the 20 creates');

      const fulfilled = settled.filter((r) => r.status === 'fulfilled');
      const rejected = settled.filter((r) => r.status === 'rejected');
      expect(fulfilled).toHaveLength(1);
      expect(rejected).toHaveLength(19);
      for (const r of rejected) expect(r.reason).toBeInstanceOf(InstanceAlreadyExistsError);
      expect(await sut.claimed()).toHaveLength(1);
      expect(sut.iac.stacksOf('chall-1')).toHaveLength(1);
    });

    it('should answer INSTANCE_ALREADY_EXISTS at once when a create of the source is still deploying, and deploy again once it failed', async () => {
      await sut.givenChallenge();
      sut.iac.holdUps();
      sut.iac.failNextUp(new IacOperationError('up', 'stack'));
      const first = sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      const firstOutcome = first.then(
        () => 'created',
        (err: unknown) => err,
      );
      await within(2_000, sut.iac.whenHeld(1), 'the first up');

      // The first `up` is still held: the duplicate does not wait for it.
      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toBeInstanceOf(InstanceAlreadyExistsError);
      expect(sut.iac.upCount).toBe(1);

      sut.iac.releaseUps();
      expect(await within(2_000, firstOutcome, 'the first create')).toBeInstanceOf(
        IacOperationError,
      );
      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(created);
    });

    it("should answer INSTANCE_ALREADY_EXISTS without deploying when another replica's creation of the source is marked", async () => {
      await sut.givenChallenge();
      // What another replica's running creation leaves in the shared state.
      const mark = await sut.state.beginCreation('chall-1', 'source-1');
      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toBeInstanceOf(InstanceAlreadyExistsError);
      expect(sut.iac.upCount).toBe(0);
      await mark.end();
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });
      expect(sut.iac.upCount).toBe(1);
    });

    it('should mark a fresh creation while it deploys, and not after', async () => {
      await sut.givenChallenge();
      sut.iac.holdUps();
      const first = sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      await within(2_000, sut.iac.whenHeld(1), 'the up');
      expect(await sut.state.creationUnderway('chall-1', 'source-1')).toBe(true);
      sut.iac.releaseUps();
      await first;
      expect(await sut.state.creationUnderway('chall-1', 'source-1')).toBe(false);
    });

    it('should create 20 instances in parallel when 20 distinct sources create concurrently', async () => {
      await sut.givenChallenge();
      sut.iac.holdUps();

      const results = Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          sut.instances.create({ challengeId: 'chall-1', sourceId: `source-${i}`, additional: {} }),
        ),
      );
      // All 20 deployments are in flight at once: one source's `up` delays no other source.
      await within(2_000, sut.iac.whenHeld(20), '20 concurrent ups');
      sut.iac.releaseUps();
      const created = await within(2_000, results, 'the 20 creates');

      expect(new Set(created.map((x) => x.identity)).size).toBe(20);
      const claimed = await sut.claimed();
      expect(claimed.map((x) => x.sourceId).sort()).toEqual(
        Array.from({ length: 20 }, (_, i) => `source-${i}`).sort(),
      );
      expect(sut.iac.stacksOf('chall-1')).toHaveLength(20);
    });

    it('should throw and record nothing when up fails', async () => {
      await sut.givenChallenge();
      sut.iac.failNextUp(new IacOperationError('up', 'stack'));

      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toBeInstanceOf(IacOperationError);

      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
      await expect(sut.instances.retrieve('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });

    it('should succeed on retry when the failed up is not repeated', async () => {
      await sut.givenChallenge();
      sut.iac.failNextUp();
      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} }),
      ).rejects.toBeInstanceOf(IacOperationError);

      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });

      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(created);
    });

    it('should destroy the stack and record nothing when the challenge is deleted during up', async () => {
      await sut.givenChallenge();
      sut.iac.holdUps();
      const creating = sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      await within(2_000, sut.iac.whenHeld(1), 'the up');
      await sut.challenges.delete('chall-1');
      sut.iac.releaseUps();

      await expect(creating).rejects.toMatchObject({ reason: 'CHALLENGE_NOT_FOUND' });
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
    });
  });

  describe('retrieve', () => {
    it('should throw INSTANCE_NOT_FOUND when the challenge does not exist', async () => {
      await expect(sut.instances.retrieve('nope', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });

    it('should throw INSTANCE_NOT_FOUND when the source has no instance', async () => {
      await sut.givenChallenge();
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });

      await expect(sut.instances.retrieve('chall-1', 'source-2')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });

    it('should still return the instance when it expired but was not deleted yet', async () => {
      await sut.givenChallenge({ timeoutMs: MINUTE });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });
      sut.clock.set(at(2 * MINUTE));

      expect((await sut.instances.retrieve('chall-1', 'source-1')).until).toEqual(at(MINUTE));
    });
  });

  describe('query', () => {
    it('should return the claimed instances of the source across challenges when some exist', async () => {
      await sut.givenChallenge({ id: 'chall-1' });
      await sut.givenChallenge({ id: 'chall-2', min: 1 });
      await sut.givenChallenge({ id: 'chall-3', min: 1 });
      const a = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      const b = await sut.instances.create({
        challengeId: 'chall-2',
        sourceId: 'source-1',
        additional: {},
      });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-2', additional: {} });
      await sut.tasks.drain();

      const found = await collect(sut.instances.query('source-1'));

      // chall-3 has only a pooled instance and chall-2 a refilled one: neither is shown.
      expect(found.sort((x, y) => x.challengeId.localeCompare(y.challengeId))).toEqual([a, b]);
      expect(await sut.pooled('chall-3')).toHaveLength(1);
    });

    it('should return nothing when the source has no instance', async () => {
      await sut.givenChallenge({ min: 2 });

      expect(await collect(sut.instances.query('source-1'))).toEqual([]);
    });
  });

  describe('renew', () => {
    // upstream's ComputeUntil at renewal: created at T0, renewed at now = T0 + 3 min.
    it.each([
      // until, timeout -> instance until
      [undefined, 10 * MINUTE, at(13 * MINUTE)], // timeout only: now + timeout
      [at(60 * MINUTE), 10 * MINUTE, at(13 * MINUTE)], // both, timeout first
      [at(8 * MINUTE), 10 * MINUTE, at(8 * MINUTE)], // both, until first
    ])(
      'should recompute until and set last_renew when the challenge has until=%s and timeout=%s',
      async (until, timeoutMs, expected) => {
        await sut.givenChallenge({ timeoutMs, ...(until === undefined ? {} : { until }) });
        const created = await sut.instances.create({
          challengeId: 'chall-1',
          sourceId: 'source-1',
          additional: { k: 'v' },
        });
        sut.clock.set(at(3 * MINUTE));

        const renewed = await sut.instances.renew('chall-1', 'source-1');

        expect(renewed).toEqual({ ...created, lastRenew: at(3 * MINUTE), until: expected });
        expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(renewed);
      },
    );

    it('should throw CHALLENGE_NO_RENEWAL when the challenge has no timeout', async () => {
      await sut.givenChallenge({ until: at(60 * MINUTE) });
      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      sut.clock.set(at(MINUTE));

      await expect(sut.instances.renew('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'CHALLENGE_NO_RENEWAL',
      });
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(created);
    });

    it('should throw INSTANCE_EXPIRED when the instance until has passed', async () => {
      await sut.givenChallenge({ timeoutMs: 10 * MINUTE });
      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      sut.clock.set(at(10 * MINUTE + 1));

      await expect(sut.instances.renew('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_EXPIRED',
      });
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(created);
    });

    it('should throw INVALID_ARGUMENT naming timeout and keep the instance when the recorded timeout puts until past the last Timestamp', async () => {
      const challenge = await sut.givenChallenge({ timeoutMs: 10 * MINUTE });
      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      await sut.state.saveChallenge({ ...challenge, timeoutMs: 315_576_000_000_000 });
      sut.clock.set(at(MINUTE));

      await expect(sut.instances.renew('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INVALID_ARGUMENT',
        field: 'timeout',
      });
      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(created);
    });

    it('should renew when the instance until is exactly now', async () => {
      await sut.givenChallenge({ timeoutMs: 10 * MINUTE });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });
      sut.clock.set(at(10 * MINUTE));

      expect((await sut.instances.renew('chall-1', 'source-1')).until).toEqual(at(20 * MINUTE));
    });

    it('should throw CHALLENGE_NOT_FOUND when the challenge does not exist', async () => {
      await expect(sut.instances.renew('nope', 'source-1')).rejects.toMatchObject({
        reason: 'CHALLENGE_NOT_FOUND',
      });
    });

    it('should throw INSTANCE_NOT_FOUND when the source has no instance', async () => {
      await sut.givenChallenge({ timeoutMs: MINUTE });

      await expect(sut.instances.renew('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });
  });

  describe('delete', () => {
    it('should destroy the stack and remove the record when the instance exists', async () => {
      await sut.givenChallenge();
      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });

      await sut.instances.delete('chall-1', 'source-1');

      expect(sut.iac.stackOf('chall-1', created.identity)).toBeUndefined();
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      await expect(sut.instances.retrieve('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });

    it('should throw CHALLENGE_NOT_FOUND when the challenge does not exist', async () => {
      await expect(sut.instances.delete('nope', 'source-1')).rejects.toMatchObject({
        reason: 'CHALLENGE_NOT_FOUND',
      });
    });

    it('should throw INSTANCE_NOT_FOUND when the source has no instance', async () => {
      await sut.givenChallenge();

      await expect(sut.instances.delete('chall-1', 'source-1')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });
    });

    it('should keep the record and throw when the destroy fails', async () => {
      await sut.givenChallenge();
      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      sut.iac.failDestroyOf(created.identity);

      await expect(sut.instances.delete('chall-1', 'source-1')).rejects.toBeInstanceOf(
        IacOperationError,
      );

      expect(await sut.instances.retrieve('chall-1', 'source-1')).toEqual(created);
      expect(sut.iac.stackOf('chall-1', created.identity)).toBeDefined();
    });

    it('should delete on retry when the destroy failure has cleared', async () => {
      await sut.givenChallenge();
      const created = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'source-1',
        additional: {},
      });
      sut.iac.failDestroyOf(created.identity);
      await expect(sut.instances.delete('chall-1', 'source-1')).rejects.toBeInstanceOf(
        IacOperationError,
      );
      sut.iac.clearDestroyFailure(created.identity);

      await sut.instances.delete('chall-1', 'source-1');

      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
    });

    it('should refill the pool when a claimed instance is deleted and the pool is short', async () => {
      await sut.givenChallenge({ min: 1, max: 2 });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-1', additional: {} });
      await sut.tasks.drain();
      // max = 2 reached (1 claimed + 1 pooled); a second claim empties the pool, no refill.
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'source-2', additional: {} });
      await sut.tasks.drain();
      expect(await sut.pooled()).toHaveLength(0);

      await sut.instances.delete('chall-1', 'source-1');
      await sut.tasks.drain();

      expect(await sut.pooled()).toHaveLength(1);
      expect(await sut.claimed()).toHaveLength(1);
    });
  });
});

import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { servicesUnderTest, type ServicesUnderTest } from '../support/services-under-test';

/**
 * Readiness across the services: a new instance is recorded (and handed out) only once its
 * probes answer, one that never does is removed, and a pooled instance is checked when claimed.
 * Probes here are `tcp://<identity>:1`, so each instance has its own and the fake probe can kill
 * any one of them.
 */

const probeOf = (identity: string, port = 1): string => `tcp://${identity}:${port}`;

describe('readiness', () => {
  let sut: ServicesUnderTest;

  beforeEach(() => {
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    sut = servicesUnderTest();
    sut.iac.readiness = (identity) => [probeOf(identity)];
  });
  afterEach(async () => {
    await sut.tasks.drain();
    vi.restoreAllMocks();
  });

  describe('a fresh instance', () => {
    it('should be recorded with its probes once they answer, after a wait of READINESS_TIMEOUT at most', async () => {
      await sut.givenChallenge();
      const instance = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: {},
      });
      expect(instance.readiness).toEqual([probeOf(instance.identity)]);
      expect(sut.readiness.calls).toEqual([
        { probes: [probeOf(instance.identity)], withinMs: 60_000 },
      ]);
      expect(await sut.claimed()).toEqual([instance]);
    });

    it('should be removed, leaving no record and no stack, and fail with INSTANCE_NOT_READY when it never answers', async () => {
      await sut.givenChallenge();
      // Every probe of this test dies: the identity is only known once deployed.
      const realWait = sut.readiness.waitReady.bind(sut.readiness);
      const dying = vi
        .spyOn(sut.readiness, 'waitReady')
        .mockImplementation((probes, withinMs, signal) => {
          for (const p of probes) sut.readiness.dead.add(p);
          return realWait(probes, withinMs, signal);
        });
      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'team', additional: {} }),
      ).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_READY',
        message: 'Instance did not become ready within 60s.',
        metadata: { challenge_id: 'chall-1', source_id: 'team' },
      });
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      expect(sut.iac.stacks.size).toBe(0);
      expect(sut.iac.upCount).toBe(1);
      expect(sut.iac.destroyCount).toBe(1);
      await expect(sut.instances.retrieve('chall-1', 'team')).rejects.toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
      });

      // Nothing holds the source: a retry deploys again.
      dying.mockRestore();
      const retried = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: {},
      });
      expect(await sut.claimed()).toEqual([retried]);
    });

    it('should neither be probed nor carry probes when its scenario exports no readiness', async () => {
      sut.iac.readiness = undefined;
      await sut.givenChallenge();
      const instance = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: {},
      });
      expect(instance).not.toHaveProperty('readiness');
      expect(sut.readiness.calls).toEqual([]);
    });

    it('should be stopped waiting and removed when the caller gives up', async () => {
      await sut.givenChallenge();
      const controller = new AbortController();
      vi.spyOn(sut.readiness, 'waitReady').mockImplementation(() => {
        controller.abort(new Error('client gone'));
        return Promise.reject(new Error('client gone'));
      });
      await expect(
        sut.instances.create(
          { challengeId: 'chall-1', sourceId: 'team', additional: {} },
          controller.signal,
        ),
      ).rejects.toThrow('client gone');
      expect(await sut.state.listInstances('chall-1')).toEqual([]);
      expect(sut.iac.stacks.size).toBe(0);
    });
  });

  describe('the pool', () => {
    it('should pool an instance only once its probes answered', async () => {
      await sut.givenChallenge({ min: 1 });
      const [pooled] = await sut.pooled();
      expect(pooled?.readiness).toEqual([probeOf(pooled!.identity)]);
      expect(sut.readiness.calls).toEqual([
        { probes: [probeOf(pooled!.identity)], withinMs: 60_000 },
      ]);
    });

    it('should not pool a spin-up that never answers, nor leave its stack', async () => {
      sut.pooler.retryDelaysMs = [];
      vi.spyOn(sut.readiness, 'waitReady').mockResolvedValue({
        failing: [1],
        lastError: 'ECONNREFUSED',
      });
      await sut.givenChallenge({ min: 1 });
      expect(await sut.pooled()).toEqual([]);
      expect(sut.iac.stacks.size).toBe(0);
    });

    it('should hand out a pooled instance that still answers, after a short check', async () => {
      await sut.givenChallenge({ min: 1 });
      const [pooled] = await sut.pooled();
      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: {},
      });
      expect(claimed.identity).toBe(pooled!.identity);
      // Checked with the claim's short budget (the refill's spin-up waits the full one).
      expect(sut.readiness.calls.filter((c) => c.withinMs === 2_000)).toEqual([
        { probes: [probeOf(pooled!.identity)], withinMs: 2_000 },
      ]);
    });

    it('should never hand out a pooled instance that stopped answering: it is replaced, and the source gets a fresh one', async () => {
      await sut.givenChallenge({ min: 1 });
      const [dead] = await sut.pooled();
      sut.readiness.dead.add(probeOf(dead!.identity));

      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: {},
      });
      expect(claimed.identity).not.toBe(dead!.identity);
      await sut.tasks.drain();

      expect(await sut.state.loadInstance('chall-1', dead!.identity)).toBeUndefined();
      expect(sut.iac.stackOf('chall-1', dead!.identity)).toBeUndefined();
      expect((await sut.claimed()).map((i) => i.identity)).toEqual([claimed.identity]);
      const pooled = await sut.pooled();
      expect(pooled).toHaveLength(1);
      expect([dead!.identity, claimed.identity]).not.toContain(pooled[0]!.identity);
    });

    it('should claim another pooled instance when one stopped answering', async () => {
      await sut.givenChallenge({ min: 3 });
      const pooled = await sut.pooled();
      // All but one are dead: whichever the claim tries first, it ends on the live one.
      for (const instance of pooled.slice(1)) sut.readiness.dead.add(probeOf(instance.identity));
      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: {},
      });
      expect(claimed.identity).toBe(pooled[0]!.identity);
      await sut.tasks.drain();
      // The dead ones the claim tried (it starts anywhere in the pool) are gone.
      const tried = sut.readiness.calls
        .filter((c) => c.withinMs === 2_000)
        .flatMap((c) => c.probes)
        .filter((p) => sut.readiness.dead.has(p));
      const now = (await sut.state.listInstances('chall-1')).map((i) => probeOf(i.identity));
      for (const probe of tried) expect(now).not.toContain(probe);
    });

    it('should keep a pooled instance that answers again by the time it would be removed', async () => {
      await sut.givenChallenge({ min: 1 });
      const [flaky] = await sut.pooled();
      const realWait = sut.readiness.waitReady.bind(sut.readiness);
      // Fails the claim's check only; the removal's check finds it answering.
      vi.spyOn(sut.readiness, 'waitReady')
        .mockImplementation(realWait)
        .mockImplementationOnce(() => Promise.resolve({ failing: [1], lastError: 'ECONNREFUSED' }));
      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: {},
      });
      expect(claimed.identity).not.toBe(flaky!.identity);
      await sut.tasks.drain();
      expect(await sut.state.loadInstance('chall-1', flaky!.identity)).toMatchObject({
        identity: flaky!.identity,
      });
      expect((await sut.pooled()).map((i) => i.identity)).toEqual([flaky!.identity]);
    });

    it('should wait for a claimed instance redeployed with the source additional, and remove it when it never answers', async () => {
      await sut.givenChallenge({ min: 1 });
      const [pooled] = await sut.pooled();
      // The redeployment exports another probe, which never answers.
      sut.iac.readiness = (identity) => [probeOf(identity, 2)];
      sut.readiness.dead.add(probeOf(pooled!.identity, 2));
      await expect(
        sut.instances.create({ challengeId: 'chall-1', sourceId: 'team', additional: { k: 'v' } }),
      ).rejects.toMatchObject({ reason: 'INSTANCE_NOT_READY' });
      await sut.tasks.drain();
      expect(await sut.state.loadInstance('chall-1', pooled!.identity)).toBeUndefined();
      expect(sut.iac.stackOf('chall-1', pooled!.identity)).toBeUndefined();
      expect(await sut.claimed()).toEqual([]);
    });

    it('should record the probes a redeployment exports', async () => {
      await sut.givenChallenge({ min: 1 });
      const [pooled] = await sut.pooled();
      sut.iac.readiness = (identity) => [probeOf(identity, 2)];
      const claimed = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 'team',
        additional: { k: 'v' },
      });
      expect(claimed.identity).toBe(pooled!.identity);
      expect(claimed.readiness).toEqual([probeOf(pooled!.identity, 2)]);
      expect((await sut.state.loadInstance('chall-1', pooled!.identity))?.readiness).toEqual([
        probeOf(pooled!.identity, 2),
      ]);
    });
  });
});

import { beforeEach, describe, expect, it } from 'vitest';
import type { Instance } from '../shared/domain';
import {
  DEFAULT_SCENARIO,
  servicesUnderTest,
  type ServicesUnderTest,
} from '../../test/support/services-under-test';
import { JanitorService } from './janitor.service';

const MINUTE = 60_000;

describe('JanitorService', () => {
  let sut: ServicesUnderTest;
  let janitor: JanitorService;

  beforeEach(() => {
    sut = servicesUnderTest();
    janitor = new JanitorService(
      sut.state,
      sut.lock,
      sut.clock,
      sut.instances,
      sut.deployer,
      sut.iac,
      sut.pooler,
    );
  });

  describe('sweep', () => {
    it('should delete claimed instances whose until has passed and keep the others', async () => {
      await sut.givenChallenge({ timeoutMs: 10 * MINUTE });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'early', additional: {} });
      sut.clock.advance(5 * MINUTE);
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 'late', additional: {} });
      sut.clock.advance(6 * MINUTE);

      const report = await janitor.sweep();

      expect(report).toEqual({
        deleted: 1,
        drained: 0,
        orphans: 0,
        leaked: 0,
        leftovers: 0,
        resumed: 0,
        failed: 0,
      });
      expect((await sut.claimed()).map((i) => i.sourceId)).toEqual(['late']);
      expect(sut.iac.stacksOf('chall-1')).toHaveLength(1);
    });

    it('should never delete an instance without until when its challenge has dates', async () => {
      await sut.givenChallenge({ min: 0 });
      await sut.instances.create({ challengeId: 'chall-1', sourceId: 's', additional: {} });
      sut.clock.advance(1000 * MINUTE);

      expect(await janitor.sweep()).toEqual({
        deleted: 0,
        drained: 0,
        orphans: 0,
        leaked: 0,
        leftovers: 0,
        resumed: 0,
        failed: 0,
      });
      expect(await sut.claimed()).toHaveLength(1);
    });

    it('should keep a failed delete recorded and retry it on the next sweep', async () => {
      await sut.givenChallenge({ timeoutMs: MINUTE });
      const instance = await sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 's',
        additional: {},
      });
      sut.clock.advance(2 * MINUTE);
      sut.iac.failDestroyOf(instance.identity);

      expect(await janitor.sweep()).toMatchObject({ deleted: 0, failed: 1 });
      expect(await sut.claimed()).toHaveLength(1);

      sut.iac.clearDestroyFailure(instance.identity);
      expect(await janitor.sweep()).toMatchObject({ deleted: 1, failed: 0 });
      expect(await sut.claimed()).toEqual([]);
    });

    it('should drain the pool when the challenge until has passed', async () => {
      await sut.givenChallenge({ min: 2, until: new Date(sut.clock.now().getTime() + MINUTE) });
      expect(await sut.pooled()).toHaveLength(2);
      sut.clock.advance(2 * MINUTE);

      expect(await janitor.sweep()).toMatchObject({ drained: 2, failed: 0 });
      expect(await sut.pooled()).toEqual([]);
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
    });

    it('should top up a live pool once when its spin-ups were lost', async () => {
      await sut.givenChallenge({ min: 2 });
      const [lost] = await sut.pooled();
      // What a crash leaves: a pooled instance whose record and stack are gone.
      await sut.deployer.destroy(lost!);
      expect(await sut.pooled()).toHaveLength(1);

      await janitor.sweep();
      // A second sweep while the spin-up runs starts none more.
      await janitor.sweep();
      await sut.tasks.drain();

      expect(await sut.pooled()).toHaveLength(2);
      expect(sut.iac.stacksOf('chall-1')).toHaveLength(2);
    });

    it('should destroy a stack that has no instance record when nothing is deploying it', async () => {
      await sut.givenChallenge();
      const scenario = await sut.oci.fetchScenario(DEFAULT_SCENARIO);
      // What a crash between `up` and the record leaves behind.
      await sut.iac.up({
        challengeId: 'chall-1',
        identity: 'deadbeefdeadbeef',
        scenario,
        additional: {},
      });

      expect(await janitor.sweep()).toMatchObject({ orphans: 1, failed: 0 });
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
    });

    it('should count an orphan stack as leaked, not clean, when its destroy found pending creates', async () => {
      await sut.givenChallenge();
      const scenario = await sut.oci.fetchScenario(DEFAULT_SCENARIO);
      // A crash during the create of `server`: Pulumi forgets it on destroy; the engine records it.
      await sut.iac.up({
        challengeId: 'chall-1',
        identity: 'feedfeedfeedfeed',
        scenario,
        additional: {},
      });
      const urn = 'urn:pulumi:feedfeedfeedfeed::p::pulumi-nodejs:dynamic:Resource::server';
      sut.iac.pendingOnDestroy.set('feedfeedfeedfeed', [urn]);

      const report = await janitor.sweep();

      expect(report).toMatchObject({ orphans: 0, leaked: 1, failed: 0 });
      expect(sut.iac.stacksOf('chall-1')).toEqual([]);
      expect(await sut.iac.pendingCreates()).toMatchObject([{ identity: 'feedfeedfeedfeed', urn }]);
    });

    it('should report the leftovers of failed operations it reclaimed', async () => {
      sut.iac.leftovers = 2;
      expect(await janitor.sweep()).toMatchObject({ leftovers: 2, failed: 0 });
      expect(await janitor.sweep()).toMatchObject({ leftovers: 0 });
    });

    it('should leave a deployment in flight alone when its stack has no record yet', async () => {
      await sut.givenChallenge();
      sut.iac.holdUps();
      const creating = sut.instances.create({
        challengeId: 'chall-1',
        sourceId: 's',
        additional: {},
      });
      // The create is in its `up`, held: its stack has no record yet.
      await sut.iac.whenHeld(1);

      const sweeping = janitor.sweep();
      sut.iac.releaseUps();
      const [created, report] = await Promise.all([creating, sweeping]);

      expect(report.orphans).toBe(0);
      expect(sut.iac.stackOf('chall-1', created.identity)).toBeDefined();
      expect(await sut.claimed()).toHaveLength(1);
    });
  });

  describe('sweep after an interrupted redeployment', () => {
    const claimedOne = async (): Promise<Instance> => {
      await sut.givenChallenge();
      return sut.instances.create({ challengeId: 'chall-1', sourceId: 's', additional: {} });
    };

    it('should finish a recreate when the crash came between its destroy and its up', async () => {
      const instance = await claimedOne();
      await sut.iac.destroy({ challengeId: 'chall-1', identity: instance.identity });
      await sut.state.saveInstance({ ...instance, pending: { operation: 'recreate' } });

      expect(await janitor.sweep()).toMatchObject({ resumed: 1, failed: 0 });
      expect(sut.iac.stackOf('chall-1', instance.identity)).toBeDefined();
      const after = await sut.state.loadInstance('chall-1', instance.identity);
      expect(after?.pending).toBeUndefined();
      expect(after?.sourceId).toBe('s');
    });

    it('should undo a blue-green whose new instance was never recorded', async () => {
      const instance = await claimedOne();
      const scenario = await sut.oci.fetchScenario(DEFAULT_SCENARIO);
      await sut.iac.up({
        challengeId: 'chall-1',
        identity: 'aaaaaaaaaaaaaaaa',
        scenario,
        additional: {},
      });
      await sut.state.saveInstance({
        ...instance,
        pending: { operation: 'blue_green', identity: 'aaaaaaaaaaaaaaaa' },
      });

      expect(await janitor.sweep()).toMatchObject({ resumed: 1, failed: 0 });
      expect(sut.iac.stackOf('chall-1', 'aaaaaaaaaaaaaaaa')).toBeUndefined();
      expect(sut.iac.stackOf('chall-1', instance.identity)).toBeDefined();
      expect((await sut.claimed()).map((i) => [i.identity, i.pending])).toEqual([
        [instance.identity, undefined],
      ]);
    });

    it('should finish a blue-green whose new instance was recorded', async () => {
      const instance = await claimedOne();
      const scenario = await sut.oci.fetchScenario(DEFAULT_SCENARIO);
      const out = await sut.iac.up({
        challengeId: 'chall-1',
        identity: 'bbbbbbbbbbbbbbbb',
        scenario,
        additional: {},
      });
      await sut.state.saveInstance({
        ...instance,
        identity: 'bbbbbbbbbbbbbbbb',
        connectionInfo: out.connectionInfo,
      });
      await sut.state.saveInstance({
        ...instance,
        pending: { operation: 'blue_green', identity: 'bbbbbbbbbbbbbbbb' },
      });

      expect(await janitor.sweep()).toMatchObject({ resumed: 1, failed: 0 });
      expect(sut.iac.stackOf('chall-1', instance.identity)).toBeUndefined();
      expect((await sut.claimed()).map((i) => i.identity)).toEqual(['bbbbbbbbbbbbbbbb']);
    });
  });
});

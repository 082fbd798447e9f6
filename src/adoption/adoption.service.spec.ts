import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { anIdentity, anInstance, aPooledInstance } from '../../test/support/builders';
import { servicesUnderTest, type ServicesUnderTest } from '../../test/support/services-under-test';
import { AdoptionIndicator, AdoptionReport } from '../shared/adoption-report';
import { IacOperationError } from '../shared/errors';
import { AdoptionService } from './adoption.service';

/** A Pulumi deployment as upstream stores it (the inner `deployment` of an export). */
const deploymentOf = (identity: string): unknown => ({
  manifest: { time: '2026-12-02T10:00:00Z' },
  resources: [
    {
      urn: `urn:pulumi:${identity}::nodejs-flag-server::pulumi:pulumi:Stack::nodejs-flag-server-${identity}`,
      type: 'pulumi:pulumi:Stack',
    },
  ],
});

describe('AdoptionService', () => {
  let sut: ServicesUnderTest;
  let report: AdoptionReport;
  let adoption: AdoptionService;
  const claimed = anInstance({ identity: anIdentity(1), sourceId: 'alice' });
  const pooled = aPooledInstance({ identity: anIdentity(2) });

  beforeEach(async () => {
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    sut = servicesUnderTest();
    report = new AdoptionReport();
    adoption = new AdoptionService(sut.state, sut.lock, sut.deployer, report);
    await sut.givenChallenge({ timeoutMs: 600_000 });
    for (const instance of [claimed, pooled]) {
      await sut.state.saveInstance(instance);
      sut.state.seedUpstream(
        instance.challengeId,
        instance.identity,
        deploymentOf(instance.identity),
      );
    }
  });
  afterEach(() => vi.restoreAllMocks());

  it('should import every upstream state, then drop it from the record, keeping the record as it was', async () => {
    expect(await adoption.adoptAll()).toEqual({ adopted: 2, failed: 0 });

    for (const instance of [claimed, pooled]) {
      expect(sut.iac.adopted.get(`chall-1/${instance.identity}`)).toEqual(
        deploymentOf(instance.identity),
      );
      expect(await sut.state.upstreamState('chall-1', instance.identity)).toBeUndefined();
      expect(await sut.state.loadInstance('chall-1', instance.identity)).toEqual(instance);
    }
    expect(report.list()).toEqual([]);
  });

  it('should adopt each instance once when two replicas run their passes together', async () => {
    const other = new AdoptionService(sut.state, sut.lock, sut.deployer, new AdoptionReport());

    const [one, two] = await Promise.all([adoption.adoptAll(), other.adoptAll()]);
    expect(one.adopted + two.adopted).toBe(2);
    expect(one.failed + two.failed).toBe(0);
    expect(sut.iac.calls.filter((c) => c.op === 'adopt')).toHaveLength(2);
  });

  it('should adopt nothing on a second pass', async () => {
    await adoption.adoptAll();
    const calls = sut.iac.totalCalls;

    expect(await adoption.adoptAll()).toEqual({ adopted: 0, failed: 0 });
    expect(sut.iac.totalCalls).toBe(calls);
  });

  it('should keep the record and report it when its import fails, and clear the report once it succeeds', async () => {
    sut.iac.adoptFailures.set(pooled.identity, new IacOperationError('import', 'x'));

    expect(await adoption.adoptAll()).toEqual({ adopted: 1, failed: 1 });
    expect(await sut.state.upstreamState('chall-1', pooled.identity)).toEqual(
      deploymentOf(pooled.identity),
    );
    expect(report.list()).toEqual([
      expect.stringContaining(`/instance/${pooled.identity}/info.json: not adopted`),
    ]);
    await expect(new AdoptionIndicator(report).check()).rejects.toThrow(/1 record\(s\)/);

    sut.iac.adoptFailures.clear();
    expect(await adoption.adoptAll()).toEqual({ adopted: 1, failed: 0 });
    expect(report.list()).toEqual([]);
    await expect(new AdoptionIndicator(report).check()).resolves.toBeUndefined();
  });

  it('should adopt an instance deleted before the pass reached it, before destroying its stack', async () => {
    await sut.instances.delete('chall-1', 'alice');

    expect(
      sut.iac.calls
        .filter((c) => 'identity' in c && c.identity === claimed.identity)
        .map((c) => c.op),
    ).toEqual(['adopt', 'destroy']);
    expect(await sut.state.loadInstance('chall-1', claimed.identity)).toBeUndefined();
  });

  it('should adopt an instance before updating it, and keep its state through a renewal before that', async () => {
    await sut.instances.renew('chall-1', 'alice');
    expect(await sut.state.upstreamState('chall-1', claimed.identity)).toEqual(
      deploymentOf(claimed.identity),
    );

    const challenge = (await sut.state.loadChallenge('chall-1'))!;
    await sut.deployer.update(challenge, claimed, 'update_in_place');
    expect(
      sut.iac.calls
        .filter((c) => 'identity' in c && c.identity === claimed.identity)
        .map((c) => c.op),
    ).toEqual(['adopt', 'up']);
    expect(await sut.state.upstreamState('chall-1', claimed.identity)).toBeUndefined();
  });
});

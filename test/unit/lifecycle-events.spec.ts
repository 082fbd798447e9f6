import { describe, expect, it } from 'vitest';
import { AppConfig } from '../../src/config';
import { EventsOptions } from '../../src/events/events.options';
import { EventsService } from '../../src/events/events.service';
import { ExpiringScheduler, expiringScanPeriodMs } from '../../src/events/expiring.scheduler';
import { backoffMs, signatureOf } from '../../src/events/webhook.deliverer';
import { anInstance, T0 } from '../support/builders';
import { servicesUnderTest } from '../support/services-under-test';

const HOUR = 3_600_000;

describe('lifecycle events published by the services', () => {
  it('should publish challenge.created, challenge.updated and challenge.deleted', async () => {
    const s = servicesUnderTest();
    const challenge = await s.givenChallenge();
    await s.challenges.update({
      id: challenge.id,
      mask: new Set(['until']),
      scenario: challenge.scenario,
      updateStrategy: 'update_in_place',
      until: new Date(T0.getTime() + HOUR),
      additional: {},
      min: 0,
      max: 0,
    });
    await s.challenges.delete(challenge.id);
    expect(s.events.published()).toEqual([
      { type: 'challenge.created', challengeId: 'chall-1' },
      { type: 'challenge.updated', challengeId: 'chall-1' },
      { type: 'challenge.deleted', challengeId: 'chall-1' },
    ]);
  });

  it('should publish instance.created, ready, renewed and deleted with the ids only', async () => {
    const s = servicesUnderTest();
    await s.givenChallenge({ timeoutMs: HOUR });
    const created = await s.instances.create({
      challengeId: 'chall-1',
      sourceId: 'team-1',
      additional: {},
    });
    await s.instances.renew('chall-1', 'team-1');
    await s.instances.delete('chall-1', 'team-1');
    const ids = { challengeId: 'chall-1', sourceId: 'team-1', identity: created.identity };
    expect(s.events.published().slice(1)).toEqual([
      { type: 'instance.created', ...ids },
      { type: 'instance.ready', ...ids },
      { type: 'instance.renewed', ...ids },
      { type: 'instance.deleted', ...ids },
    ]);
    const ids2 = s.events.events.map((e) => e.id);
    expect(ids2).toEqual([1, 2, 3, 4, 5]);
  });

  it('should publish instance.failed when a create fails to deploy, and answer the failure', async () => {
    const s = servicesUnderTest();
    await s.givenChallenge();
    s.iac.failNextUp();
    await expect(
      s.instances.create({ challengeId: 'chall-1', sourceId: 'team-1', additional: {} }),
    ).rejects.toThrow();
    expect(s.events.published().at(-1)).toEqual({
      type: 'instance.failed',
      challengeId: 'chall-1',
      sourceId: 'team-1',
    });
  });

  it('should publish nothing but answer as before when a create is refused by its checks', async () => {
    const s = servicesUnderTest();
    await expect(
      s.instances.create({ challengeId: 'nope', sourceId: 'team-1', additional: {} }),
    ).rejects.toThrow();
    expect(s.events.published()).toEqual([]);
  });

  it('should publish instance.deleted for the claimed instances a challenge deletion destroys', async () => {
    const s = servicesUnderTest();
    await s.givenChallenge();
    const created = await s.instances.create({
      challengeId: 'chall-1',
      sourceId: 'team-1',
      additional: {},
    });
    await s.challenges.delete('chall-1');
    expect(s.events.published().slice(-2)).toEqual([
      {
        type: 'instance.deleted',
        challengeId: 'chall-1',
        sourceId: 'team-1',
        identity: created.identity,
      },
      { type: 'challenge.deleted', challengeId: 'chall-1' },
    ]);
  });

  it('should publish pool.low when a claim takes the pool below its min, pool.exhausted when it is empty', async () => {
    const s = servicesUnderTest();
    await s.givenChallenge({ min: 1, max: 2 });
    s.iac.holdUps();
    await s.instances.create({ challengeId: 'chall-1', sourceId: 'team-1', additional: {} });
    await s.iac.whenHeld(1);
    // The refill is held: the second claim finds the pool empty and deploys.
    const second = s.instances.create({
      challengeId: 'chall-1',
      sourceId: 'team-2',
      additional: {},
    });
    await s.iac.whenHeld(2);
    s.iac.releaseUps();
    await second;
    await s.tasks.drain();
    const types = s.events.published().map((e) => e.type);
    expect(types.filter((t) => t.startsWith('pool.'))).toEqual(['pool.low', 'pool.exhausted']);
    expect(s.events.published().find((e) => e.type === 'pool.low')).toEqual({
      type: 'pool.low',
      challengeId: 'chall-1',
    });
  });

  it('should never fail an operation when events cannot be published', async () => {
    const s = servicesUnderTest();
    s.events.failing = true;
    await s.givenChallenge({ timeoutMs: HOUR });
    const created = await s.instances.create({
      challengeId: 'chall-1',
      sourceId: 'team-1',
      additional: {},
    });
    expect(created.sourceId).toBe('team-1');
    await s.instances.delete('chall-1', 'team-1');
    expect(s.events.events).toEqual([]);
  });
});

describe('ExpiringScheduler', () => {
  const lead = 5 * 60_000;
  const options = new EventsOptions(15_000, lead, undefined);

  it('should announce a claimed instance once, within the lead of its until, and again after a renewal', async () => {
    const s = servicesUnderTest();
    await s.givenChallenge();
    const until = new Date(T0.getTime() + HOUR);
    await s.state.saveInstance(anInstance({ until }));
    await s.state.saveInstance(anInstance({ identity: '0000000000000002', sourceId: 'team-2' }));
    const scheduler = new ExpiringScheduler(s.state, s.clock, s.events, options);
    await scheduler.scan(new Date(until.getTime() - lead - 1));
    expect(s.events.published().filter((e) => e.type === 'instance.expiring')).toEqual([]);
    await scheduler.scan(new Date(until.getTime() - lead));
    await scheduler.scan(new Date(until.getTime() - 1000));
    // Another replica scanning the same instances: the journal's mark keeps it to one.
    await new ExpiringScheduler(s.state, s.clock, s.events, options).scan(
      new Date(until.getTime() - 500),
    );
    const expiring = () => s.events.published().filter((e) => e.type === 'instance.expiring');
    expect(expiring()).toEqual([
      {
        type: 'instance.expiring',
        challengeId: 'chall-1',
        sourceId: 'source-1',
        identity: anInstance().identity,
      },
    ]);
    const renewed = new Date(until.getTime() + HOUR);
    await s.state.saveInstance(anInstance({ until: renewed }));
    await scheduler.scan(new Date(renewed.getTime() - 1000));
    expect(expiring()).toHaveLength(2);
    // Past `until`: the janitor's business, no announcement.
    await s.state.saveInstance(anInstance({ until: new Date(T0.getTime()) }));
    await scheduler.scan(new Date(T0.getTime() + 1));
    expect(expiring()).toHaveLength(2);
  });

  it('should scan a tenth of the lead apart, between 1 and 30 seconds', () => {
    expect(expiringScanPeriodMs(5 * 60_000)).toBe(30_000);
    expect(expiringScanPeriodMs(60_000)).toBe(6_000);
    expect(expiringScanPeriodMs(2_000)).toBe(1_000);
  });
});

describe('EventsService', () => {
  it('should stream the events after a position, then new ones as they come, until aborted', async () => {
    const s = servicesUnderTest();
    await s.events.publish('challenge.created', { challengeId: 'a' });
    await s.events.publish('challenge.created', { challengeId: 'b' });
    const abort = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const e of new EventsService(s.events).watch(
        { challengeId: 'b' },
        0,
        abort.signal,
      )) {
        seen.push(`${e.id} ${e.type}`);
        if (seen.length === 2) abort.abort();
      }
    })();
    await s.events.publish('challenge.created', { challengeId: 'a' });
    await s.events.publish('challenge.deleted', { challengeId: 'b' });
    await watching;
    expect(seen).toEqual(['2 challenge.created', '4 challenge.deleted']);
  });
});

describe('webhook deliveries', () => {
  it('should back off from 0.5 s, doubling, up to 1 min', () => {
    expect([0, 1, 2, 3, 6, 7, 50].map(backoffMs)).toEqual([
      500, 1_000, 2_000, 4_000, 32_000, 60_000, 60_000,
    ]);
  });

  it('should sign the body with HMAC-SHA256 of the secret, in hex', () => {
    // RFC 4231 test case 2.
    expect(signatureOf('what do ya want for nothing?', 'Jefe')).toBe(
      'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });
});

describe('AppConfig events settings', () => {
  it('should default to a journal of 10000, keep-alives every 15 s, a 5 min lead, no webhook', () => {
    const c = AppConfig.fromEnv({});
    expect(c.events).toEqual({
      journalSize: 10_000,
      keepAliveMs: 15_000,
      expiringLeadMs: 300_000,
      webhook: undefined,
    });
  });

  it('should refuse WEBHOOK_URL without WEBHOOK_SECRET, naming it', () => {
    expect(() => AppConfig.fromEnv({ WEBHOOK_URL: 'http://hooks.invalid/cm' })).toThrow(
      /WEBHOOK_SECRET: required with WEBHOOK_URL/,
    );
    expect(() => AppConfig.fromEnv({ WEBHOOK_URL: 'ftp://x', WEBHOOK_SECRET: 's' })).toThrow(
      /WEBHOOK_URL/,
    );
  });

  it('should read the webhook and hide its secret from scenario programs', () => {
    const c = AppConfig.fromEnv({
      WEBHOOK_URL: 'https://hooks.invalid/cm',
      WEBHOOK_SECRET: 's3cret',
      EVENTS_EXPIRING_LEAD: '90s',
    });
    expect(c.events.webhook).toEqual({ url: 'https://hooks.invalid/cm', secret: 's3cret' });
    expect(c.events.expiringLeadMs).toBe(90_000);
    expect(c.iac.programEnv.WEBHOOK_SECRET).toBe('');
  });
});

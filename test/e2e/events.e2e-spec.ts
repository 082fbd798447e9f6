import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually, jsonInit } from '../support/api-app';
import { outputsOnlyScenario } from '../support/api-scenarios';
import {
  GrpcWatcher,
  SseClient,
  validSignature,
  WebhookReceiver,
  type SeenEvent,
} from '../support/event-clients';
import { orasPush } from '../support/oras';
import {
  buildServiceIfStale,
  killProcessesWithEnv,
  startReplica,
  type Replica,
} from '../support/replica-process';
import { scenarioOf } from '../support/scenarios';
import { useToolchainPath } from '../support/toolchain';

/**
 * Lifecycle events end to end: two real replicas (`node dist/main.js`) sharing one DIR and etcd
 * locks, a real registry and real Pulumi. Watchers on both transports and both replicas, a
 * client resuming with Last-Event-ID, a webhook receiver that fails before it accepts, filters.
 */

const SECRET = 'events-e2e-secret';
/** Deliveries the receiver refuses before it accepts (retried with backoff: 0.5 + 1 + 2 s). */
const FAIL_FIRST = 3;
/** The lifecycle challenge's instance lifetime, and how long before its end it is announced. */
const TIMEOUT_S = 20;
const LEAD_S = 8;

let scratch: string;
let dir: string;
let scenario: string;
let receiver: WebhookReceiver;
let a: Replica;
let b: Replica;
const opened: { close(): unknown }[] = [];

async function rest(
  replica: Replica,
  path: string,
  init?: RequestInit,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${replica.base}${path}`, {
    signal: AbortSignal.timeout(240_000),
    ...init,
  });
  const text = await res.text();
  expect(res.status, `${replica.name}: ${init?.method ?? 'GET'} ${path}: ${text}`).toBe(200);
  return JSON.parse(text) as Record<string, unknown>;
}

async function sse(replica: Replica, query = '', headers?: Record<string, string>) {
  const client = await SseClient.open(replica.base, query, headers);
  opened.push(client);
  return client;
}

/** A gRPC watch, once the server has answered it (whatever happens next, it sees). */
async function watcher(replica: Replica, request: object): Promise<GrpcWatcher> {
  const w = new GrpcWatcher(replica.address, request);
  opened.push(w);
  await w.ready;
  return w;
}

/** `type challengeId/sourceId` of each event, for readable comparisons. */
const summary = (events: readonly SeenEvent[]): string[] =>
  events.map((e) => `${e.type} ${e.challengeId}${e.sourceId ? `/${e.sourceId}` : ''}`);

const ofChallenge = (events: readonly SeenEvent[], id: string): SeenEvent[] =>
  events.filter((e) => e.challengeId === id);

const logs = (): string => `--- A:\n${a.output()}\n--- B:\n${b.output()}`;

beforeAll(async () => {
  useToolchainPath();
  scratch = mkdtempSync(join(tmpdir(), 'cm-events-'));
  dir = join(scratch, 'data');
  [scenario] = await Promise.all([
    orasPush(
      inject('registry'),
      'events/outputs-only:v1',
      scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('events')),
    ),
    buildServiceIfStale(),
  ]);
  receiver = await WebhookReceiver.start(FAIL_FIRST);
  const env = {
    ETCD_ENDPOINT: inject('etcdEndpoint'),
    ETCD_LEASE_TTL: '3',
    JANITOR_TICKER: '1s',
    EVENTS_EXPIRING_LEAD: `${LEAD_S}s`,
    EVENTS_KEEPALIVE: '1s',
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: SECRET,
  };
  a = await startReplica({ name: 'A', dir, cache: join(scratch, 'cache-A'), env });
  b = await startReplica({ name: 'B', dir, cache: join(scratch, 'cache-B'), env });
});

afterAll(async () => {
  for (const client of opened) await client.close();
  await Promise.all([a, b].map((r) => r?.stop()));
  if (dir) killProcessesWithEnv('DIR', dir);
  await receiver?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('lifecycle events over two replicas sharing DIR and etcd locks', () => {
  /** Every event of the lifecycle, as the SSE client on A received it. */
  let lifecycle: SeenEvent[] = [];

  it('should show every event of a lifecycle, in order, to an SSE client on one replica and a gRPC watcher on the other', async () => {
    const onA = await sse(a);
    expect(onA.status).toBe(200);
    expect(onA.contentType).toMatch(/^text\/event-stream/);
    const onB = await watcher(b, {});
    const id = 'ev-life';
    const source = 'team-1';

    await rest(
      a,
      '/api/v1/challenge',
      jsonInit('POST', { id, scenario, timeout: `${TIMEOUT_S}s` }),
    );
    const created = await rest(
      b,
      '/api/v1/instance',
      jsonInit('POST', { challengeId: id, sourceId: source }),
    );
    await rest(a, `/api/v1/instance/${id}/${source}`, jsonInit('PATCH', {}));
    // The janitor (every second, either replica) deletes it once `until` has passed; before
    // that, EVENTS_EXPIRING_LEAD ahead, one of the replicas announces it.
    await eventually(
      'the janitor deletes the expired instance',
      (TIMEOUT_S + 30) * 1000,
      () => onA.events.some((e) => e.type === 'instance.deleted'),
      logs,
    );
    await rest(a, `/api/v1/challenge/${id}`, { method: 'DELETE' });

    const expected = [
      `challenge.created ${id}`,
      `instance.created ${id}/${source}`,
      `instance.ready ${id}/${source}`,
      `instance.renewed ${id}/${source}`,
      `instance.expiring ${id}/${source}`,
      `instance.deleted ${id}/${source}`,
      `challenge.deleted ${id}`,
    ];
    await eventually(
      'both watchers see the whole lifecycle',
      30_000,
      () => onA.events.length >= expected.length && onB.events.length >= expected.length,
      () => `${JSON.stringify(summary(onA.events))} / ${JSON.stringify(summary(onB.events))}`,
    );
    expect(summary(onA.events)).toEqual(expected);
    expect(summary(onB.events)).toEqual(expected);
    // Same ids, same times on both transports and replicas; ids increase.
    expect(onB.events.map((e) => [e.id, e.time])).toEqual(onA.events.map((e) => [e.id, e.time]));
    const ids = onA.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
    // The instance events name it by identity; nothing of what players must not see.
    const identity = onA.events.find((e) => e.type === 'instance.created')?.identity;
    expect(identity).toMatch(/^[0-9a-f]{16}$/);
    for (const e of onA.events.filter((x) => x.type.startsWith('instance.')))
      expect(e.identity).toBe(identity);
    const flags = created.flags as string[];
    for (const e of [...onA.events, ...onB.events]) {
      const text = JSON.stringify(e.raw);
      for (const flag of flags) expect(text).not.toContain(flag);
      expect(text).not.toContain(String(created.connectionInfo));
      expect(Object.keys(e.raw).sort()).toEqual(
        ['challengeId', 'id', 'identity', 'sharedFrom', 'sourceId', 'time', 'type'].sort(),
      );
      // Only flag.shared names a second source.
      expect(e.raw.sharedFrom).toBe('');
    }
    // expiring: announced once, ahead of `until`.
    const expiring = onA.events.find((e) => e.type === 'instance.expiring')!;
    const renewed = onA.events.find((e) => e.type === 'instance.renewed')!;
    expect(expiring.time).toBeLessThan(renewed.time + TIMEOUT_S * 1000);
    // Idle streams get keep-alive comments (EVENTS_KEEPALIVE=1s).
    expect(onA.comments).toBeGreaterThan(0);
    lifecycle = onA.events;
  });

  it('should give a client resuming with Last-Event-ID every event it missed, and no other', async () => {
    expect(lifecycle.length).toBeGreaterThan(2);
    // Resuming right after the first event of the lifecycle: the rest of it, at once.
    const resumed = await sse(b, '', { 'Last-Event-ID': String(lifecycle[0]!.id) });
    await eventually(
      'the resumed stream catches up',
      10_000,
      () => resumed.events.length >= lifecycle.length - 1,
    );
    expect(resumed.events.map((e) => e.id)).toEqual(lifecycle.slice(1).map((e) => e.id));

    // A client that goes away in the middle of changes, then comes back with its last id.
    const first = await sse(a, '?challengeId=ev-resume');
    await rest(a, '/api/v1/challenge', jsonInit('POST', { id: 'ev-resume', scenario }));
    await eventually('the first event', 10_000, () => first.events.length === 1);
    await first.close();
    const lastId = first.lastEventId;
    for (const until of ['2099-01-01T00:00:00Z', '2098-01-01T00:00:00Z']) {
      await rest(
        b,
        '/api/v1/challenge/ev-resume',
        jsonInit('PATCH', { until, updateMask: 'until' }),
      );
    }
    await rest(b, '/api/v1/challenge/ev-resume', { method: 'DELETE' });
    const again = await sse(a, '?challengeId=ev-resume', { 'Last-Event-ID': lastId });
    await eventually('the missed events', 10_000, () => again.events.length >= 3);
    expect(summary([...first.events, ...again.events])).toEqual([
      'challenge.created ev-resume',
      'challenge.updated ev-resume',
      'challenge.updated ev-resume',
      'challenge.deleted ev-resume',
    ]);
    // The `after` query parameter does the same over REST, and `after` over gRPC.
    const byQuery = await sse(b, `?challengeId=ev-resume&after=${lastId}`);
    const byGrpc = await watcher(a, { challengeId: 'ev-resume', after: lastId });
    await eventually(
      'the resumed streams',
      10_000,
      () => byQuery.events.length >= 3 && byGrpc.events.length >= 3,
    );
    expect(byQuery.events.map((e) => e.id)).toEqual(again.events.map((e) => e.id));
    expect(byGrpc.events.map((e) => e.id)).toEqual(again.events.map((e) => e.id));
  });

  it('should deliver every event to a webhook that failed its first deliveries, in order, signed', async () => {
    const all = await sse(b, '?after=0');
    await eventually('the whole journal', 10_000, () =>
      all.events.some((e) => e.challengeId === 'ev-resume' && e.type === 'challenge.deleted'),
    );
    await eventually(
      'the receiver accepts every event',
      60_000,
      () => receiver.accepted().length >= all.events.length,
      () => JSON.stringify(receiver.deliveries.map((d) => [d.answered, d.body])),
    );
    // The first deliveries were refused, then retried until taken.
    expect(receiver.deliveries.slice(0, FAIL_FIRST).map((d) => d.answered)).toEqual(
      Array.from({ length: FAIL_FIRST }, () => 503),
    );
    const first = JSON.parse(receiver.deliveries[0]!.body) as { id: string };
    const retried = JSON.parse(receiver.deliveries[FAIL_FIRST]!.body) as { id: string };
    expect(retried.id).toBe(first.id);
    // Every event, once, in order (at-least-once: a duplicate would be a replay after a crash).
    expect(receiver.accepted().map((e) => e.id)).toEqual(all.events.map((e) => e.id));
    expect(receiver.accepted().map((e) => e.raw)).toEqual(all.events.map((e) => e.raw));
    for (const d of receiver.deliveries) {
      expect(validSignature(d.body, d.headers['x-chall-manager-signature'], SECRET)).toBe(true);
      expect(d.headers['content-type']).toBe('application/json');
    }
    expect(validSignature(receiver.deliveries[0]!.body, 'sha256=00', SECRET)).toBe(false);
  });

  it('should filter events by challenge and by source, live and when resuming', async () => {
    const id = 'ev-filter';
    const onlyA = await sse(a, `?challengeId=${id}&sourceId=team-a`);
    const onlyB = await watcher(b, { challengeId: id, sourceId: 'team-b' });
    const wholeChallenge = await watcher(a, { challengeId: id });
    const otherChallenge = await sse(b, '?challenge_id=ev-elsewhere');
    await rest(a, '/api/v1/challenge', jsonInit('POST', { id, scenario }));
    await Promise.all(
      ['team-a', 'team-b'].map((sourceId, i) =>
        rest(i === 0 ? a : b, '/api/v1/instance', jsonInit('POST', { challengeId: id, sourceId })),
      ),
    );
    for (const sourceId of ['team-a', 'team-b'])
      await rest(b, `/api/v1/instance/${id}/${sourceId}`, { method: 'DELETE' });
    await rest(a, `/api/v1/challenge/${id}`, { method: 'DELETE' });
    await eventually(
      'the filtered watchers',
      20_000,
      () =>
        onlyA.events.length >= 3 && onlyB.events.length >= 3 && wholeChallenge.events.length >= 8,
    );
    for (const [events, source] of [
      [onlyA.events, 'team-a'],
      [onlyB.events, 'team-b'],
    ] as const) {
      expect(summary(events)).toEqual([
        `instance.created ${id}/${source}`,
        `instance.ready ${id}/${source}`,
        `instance.deleted ${id}/${source}`,
      ]);
    }
    const types = summary(wholeChallenge.events);
    expect(types[0]).toBe(`challenge.created ${id}`);
    expect(types.at(-1)).toBe(`challenge.deleted ${id}`);
    expect(types).toHaveLength(8);
    expect(otherChallenge.events).toEqual([]);
    // The same filters over the journal.
    const resumed = await sse(b, `?challengeId=${id}&sourceId=team-a&after=0`);
    await eventually('the resumed filter', 10_000, () => resumed.events.length >= 3);
    expect(resumed.events.map((e) => e.id)).toEqual(onlyA.events.map((e) => e.id));
    const grpcAll = await watcher(a, { sourceId: 'team-b', after: '0' });
    await eventually('the gRPC source filter', 10_000, () => grpcAll.events.length >= 3);
    expect(grpcAll.events.map((e) => e.id)).toEqual(onlyB.events.map((e) => e.id));
    expect(ofChallenge(grpcAll.events, id)).toHaveLength(3);
  });

  it('should refuse a malformed resume position with INVALID_ARGUMENT naming it', async () => {
    const res = await fetch(`${a.base}/api/v1/events?after=abc`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(3);
    expect(body.message).toContain('after');
    const header = await fetch(`${a.base}/api/v1/events`, { headers: { 'Last-Event-ID': '-1' } });
    expect(header.status).toBe(400);
    expect(((await header.json()) as { message: string }).message).toContain('Last-Event-ID');
  });
});

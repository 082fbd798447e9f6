import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { bootApiApp, jsonInit, ndjson, type ApiApp } from '../support/api-app';
import { identityOfOutputsOnly, outputsOnlyScenario } from '../support/api-scenarios';
import { orasPush } from '../support/oras';
import { scenarioOf } from '../support/scenarios';

/**
 * What the CTFd plugin (ctfer-io/ctfd-chall-manager) sends and reads, call by call, over REST,
 * against the real service. JSON is asserted literally where upstream gives
 * the shapes.
 */

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;
const UNTIL = '2222-02-22T21:22:00Z';

let svc: ApiApp;
let v1: string;
let v2: string;

/** The plugin's calls: JSON bodies, JSON answers. */
async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await svc.rest(path, jsonInit(method, body));
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
}

const identityOf = identityOfOutputsOnly;

/** Waits until the clock is past `timestamp` (RFC 3339), so what the service stamps next is later. */
async function clockPast(timestamp: unknown): Promise<void> {
  const at = Date.parse(timestamp as string);
  await vi.waitFor(
    () => {
      if (!(Date.now() > at)) throw new Error(`the clock is not past ${String(timestamp)} yet`);
    },
    { timeout: 5_000, interval: 5 },
  );
}

beforeAll(async () => {
  svc = await bootApiApp({ JANITOR_TICKER: '0' });
  const registry = inject('registry');
  // Two digests of one program: a tiny scenario whose `additional.flags` sets the flag count.
  v1 = await orasPush(
    registry,
    'ctfd/plugin-flags:v1',
    scenarioOf(svc.scratch, 'v1', outputsOnlyScenario('v1')),
  );
  v2 = await orasPush(
    registry,
    'ctfd/plugin-flags:v2',
    scenarioOf(svc.scratch, 'v2', outputsOnlyScenario('v2')),
  );
});
afterAll(async () => {
  await svc?.close();
});

describe('CTFd plugin replay over REST', () => {
  let instance17: Record<string, unknown>;

  it('should answer 2xx on the healthcheck when the plugin checks reachability', async () => {
    const res = await svc.rest('/healthcheck');
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(300);
  });

  it('should echo every parameter and ignore updateStrategy when creating a challenge', async () => {
    const res = await call('POST', '/api/v1/challenge', {
      id: '1',
      scenario: v1,
      additional: {},
      until: UNTIL,
      timeout: '600s',
      min: 0,
      max: 0,
      updateStrategy: 'update_in_place',
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      id: '1',
      scenario: v1,
      timeout: '600s',
      until: UNTIL,
      instances: [],
      additional: {},
      min: '0',
      max: '0',
    });
  });

  it('should answer null timeout and until when a challenge is created without them', async () => {
    const res = await call('POST', '/api/v1/challenge', {
      id: '2',
      scenario: v1,
      additional: { flags: '2' },
      until: null,
      timeout: null,
      min: 0,
      max: 0,
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      id: '2',
      scenario: v1,
      timeout: null,
      until: null,
      instances: [],
      additional: { flags: '2' },
      min: '0',
      max: '0',
    });
  });

  it('should round-trip until when the plugin retrieves the challenge', async () => {
    const res = await call('GET', '/api/v1/challenge/1');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      id: '1',
      scenario: v1,
      timeout: '600s',
      until: UNTIL,
      instances: [],
      additional: {},
      min: '0',
      max: '0',
    });
  });

  it('should reset until and set timeout when patching with updateMask "timeout,until"', async () => {
    const res = await call('PATCH', '/api/v1/challenge/1', {
      timeout: '300s',
      until: null,
      updateStrategy: 'update_in_place',
      updateMask: 'timeout,until',
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      id: '1',
      scenario: v1,
      timeout: '300s',
      until: null,
      instances: [],
      additional: {},
      min: '0',
      max: '0',
    });
    expect((await call('GET', '/api/v1/challenge/1')).json).toMatchObject({
      timeout: '300s',
      until: null,
    });
  });

  it('should create an instance with since, until, connectionInfo and one flag when asked', async () => {
    const before = Date.now();
    const res = await call('POST', '/api/v1/instance', { challengeId: '1', sourceId: '7' });
    expect(res.status).toBe(200);
    const identity = identityOf(res.json.connectionInfo);
    const flag = `PLUGIN{${identity}-0}`;
    expect(res.json).toEqual({
      challengeId: '1',
      sourceId: '7',
      since: expect.stringMatching(RFC3339_UTC) as unknown,
      lastRenew: res.json.since,
      until: expect.stringMatching(RFC3339_UTC) as unknown,
      connectionInfo: `http://${identity}.ctf.invalid`,
      flag,
      flags: [flag],
      additional: {},
    });
    const since = Date.parse(res.json.since as string);
    expect(since).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(res.json.until as string) - since).toBe(300_000);
    instance17 = res.json;
  });

  it('should answer 409 with "already exist" in the message when creating it again', async () => {
    const res = await call('POST', '/api/v1/instance', { challengeId: '1', sourceId: '7' });
    expect(res.status).toBe(409);
    expect(res.json.code).toBe(6);
    expect(res.json.message).toBe('Instance already exists.');
    expect(String(res.json.message)).toContain('already exist');
    expect(res.json.details).toEqual(
      expect.arrayContaining([
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'INSTANCE_ALREADY_EXISTS',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { challenge_id: '1', source_id: '7' },
        },
      ]),
    );
  });

  it('should give since, connectionInfo, until and flags when the plugin gets the instance', async () => {
    const res = await call('GET', '/api/v1/instance/1/7');
    expect(res.status).toBe(200);
    expect(res.json).toEqual(instance17);
    expect(res.json.since).not.toBeNull();
  });

  it('should omit flag and until when the instance has two flags and never expires', async () => {
    const res = await call('POST', '/api/v1/instance', { challengeId: '2', sourceId: '7' });
    expect(res.status).toBe(200);
    const identity = identityOf(res.json.connectionInfo);
    expect(res.json).toEqual({
      challengeId: '2',
      sourceId: '7',
      since: expect.stringMatching(RFC3339_UTC) as unknown,
      lastRenew: res.json.since,
      connectionInfo: `http://${identity}.ctf.invalid`,
      flags: [`PLUGIN{${identity}-0}`, `PLUGIN{${identity}-1}`],
      additional: {},
    });
    expect(Object.keys(res.json)).not.toContain('flag');
    expect(Object.keys(res.json)).not.toContain('until');
    const got = await call('GET', '/api/v1/instance/2/7');
    expect(got.json).toEqual(res.json);
  });

  it('should stream the source instances as result lines when querying by sourceId', async () => {
    const res = await svc.rest('/api/v1/instance?sourceId=7');
    expect(res.status).toBe(200);
    const lines = await ndjson(res);
    expect(lines).toHaveLength(2);
    const results = lines.map((l) => l.result as Record<string, unknown>);
    expect(results.map((r) => r.challengeId).sort()).toEqual(['1', '2']);
    expect(results.find((r) => r.challengeId === '1')).toEqual(instance17);
  });

  it('should stream challenges with their instances when the plugin lists them', async () => {
    const res = await svc.rest('/api/v1/challenge');
    expect(res.status).toBe(200);
    const results = (await ndjson(res)).map((l) => l.result as Record<string, unknown>);
    const byId = new Map(results.map((c) => [c.id, c.instances as Record<string, unknown>[]]));
    expect([...byId.keys()].sort()).toEqual(['1', '2']);
    expect(byId.get('1')?.map((i) => [i.challengeId, i.sourceId])).toEqual([['1', '7']]);
    expect(byId.get('2')?.map((i) => [i.challengeId, i.sourceId])).toEqual([['2', '7']]);
  });

  it('should renew when patching the instance with {} and with an empty body', async () => {
    await clockPast(instance17.lastRenew);
    const withEmptyObject = await call('PATCH', '/api/v1/instance/1/7', {});
    expect(withEmptyObject.status).toBe(200);
    expect(withEmptyObject.json).toMatchObject({
      challengeId: '1',
      sourceId: '7',
      since: instance17.since,
      connectionInfo: instance17.connectionInfo,
      flags: instance17.flags,
    });
    expect(Date.parse(withEmptyObject.json.lastRenew as string)).toBeGreaterThan(
      Date.parse(instance17.lastRenew as string),
    );
    expect(Date.parse(withEmptyObject.json.until as string)).toBeGreaterThan(
      Date.parse(instance17.until as string),
    );

    await clockPast(withEmptyObject.json.lastRenew);
    const res = await svc.rest('/api/v1/instance/1/7', { method: 'PATCH' });
    expect(res.status).toBe(200);
    const withNoBody = (await res.json()) as Record<string, unknown>;
    expect(Date.parse(withNoBody.lastRenew as string)).toBeGreaterThan(
      Date.parse(withEmptyObject.json.lastRenew as string),
    );
    instance17 = (await call('GET', '/api/v1/instance/1/7')).json;
  });

  it('should move the instance until when updating the scenario with updateStrategy recreate', async () => {
    await clockPast(instance17.lastRenew);
    const res = await call('PATCH', '/api/v1/challenge/1', {
      scenario: v2,
      updateStrategy: 'recreate',
      updateMask: 'scenario',
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: '1', scenario: v2, timeout: '300s', until: null });
    const got = await call('GET', '/api/v1/instance/1/7');
    expect(got.status).toBe(200);
    expect(got.json.until).not.toBe(instance17.until);
    expect(Date.parse(got.json.until as string)).toBeGreaterThan(
      Date.parse(instance17.until as string),
    );
    // recreate keeps the identity, so the flags stay.
    expect(got.json.flags).toEqual(instance17.flags);
    expect((res.json.instances as unknown[])[0]).toEqual(got.json);
  });

  it('should serve the shared source id 0 like any other when the challenge is shared', async () => {
    const created = await call('POST', '/api/v1/instance', { challengeId: '1', sourceId: '0' });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ challengeId: '1', sourceId: '0' });
    const got = await call('GET', '/api/v1/instance/1/0');
    expect(got.json).toEqual(created.json);
    const lines = await ndjson(await svc.rest('/api/v1/instance?sourceId=0'));
    expect(lines.map((l) => (l.result as { challengeId: string }).challengeId)).toEqual(['1']);
    const deleted = await call('DELETE', '/api/v1/instance/1/0');
    expect([deleted.status, deleted.json]).toEqual([200, {}]);
  });

  it('should answer {} when deleting the instance and 404 when getting it afterwards', async () => {
    const deleted = await call('DELETE', '/api/v1/instance/1/7');
    expect(deleted.status).toBe(200);
    expect(deleted.json).toEqual({});
    const missing = await call('GET', '/api/v1/instance/1/7');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: 5, message: 'Instance not found.' });
  });

  it('should answer 404 when renewing or deleting an instance that does not exist', async () => {
    for (const method of ['PATCH', 'DELETE']) {
      const res = await call(method, '/api/v1/instance/1/7', method === 'PATCH' ? {} : undefined);
      expect(res.status).toBe(404);
      expect(res.json).toMatchObject({ code: 5, message: 'Instance not found.' });
    }
  });

  it('should delete the challenges after the existence check and answer 404 afterwards', async () => {
    for (const id of ['1', '2']) {
      expect((await call('GET', `/api/v1/challenge/${id}`)).status).toBe(200);
      const deleted = await call('DELETE', `/api/v1/challenge/${id}`);
      expect([deleted.status, deleted.json]).toEqual([200, {}]);
      const missing = await call('GET', `/api/v1/challenge/${id}`);
      expect(missing.status).toBe(404);
      expect(missing.json).toMatchObject({ code: 5, message: 'Challenge not found.' });
    }
    const res = await svc.rest('/api/v1/instance?sourceId=7');
    expect([res.status, await res.text()]).toEqual([200, '']);
  });
});

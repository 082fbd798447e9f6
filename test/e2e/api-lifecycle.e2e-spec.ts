import { existsSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { BackgroundTasks } from '../../src/shared/background-tasks';
import { IacEngine } from '../../src/shared/ports/iac-engine.port';
import {
  bootApiApp,
  grpcError,
  grpcStatusOf,
  jsonInit,
  ndjson,
  readBanner,
  tcpClosed,
  timestampMs,
  type ApiApp,
} from '../support/api-app';
import { orasPush } from '../support/oras';
import { EXAMPLES } from '../support/scenarios';

/**
 * The whole life of a challenge and one instance against the real service (real Pulumi CLI, real
 * registry, real files), the same steps over REST and over gRPC: the instance is a real TCP
 * service whose flag is read over the network.
 */

/** An instance as both transports show it, timestamps in ms. */
interface InstanceSeen {
  challengeId: string;
  sourceId: string;
  since: number;
  lastRenew: number;
  until: number | undefined;
  connectionInfo: string;
  flag: string | undefined;
  flags: string[];
  additional: Record<string, string>;
}

/** A challenge as both transports show it. */
interface ChallengeSeen {
  id: string;
  scenario: string;
  /** Seconds, or null when unset. */
  timeoutSeconds: number | null;
  until: number | null;
  instances: InstanceSeen[];
  additional: Record<string, string>;
  min: string;
  max: string;
}

type Strategy = 'update_in_place' | 'blue_green' | 'recreate';

/** The API, one transport behind it; each call fails the test on an error answer. */
interface Api {
  createChallenge(id: string, scenario: string, timeoutSeconds: number): Promise<ChallengeSeen>;
  retrieveChallenge(id: string): Promise<ChallengeSeen>;
  queryChallenges(): Promise<ChallengeSeen[]>;
  updateChallenge(
    id: string,
    body: { scenario: string; additional: Record<string, string>; strategy: Strategy },
    mask: string[],
  ): Promise<ChallengeSeen>;
  deleteChallenge(id: string): Promise<void>;
  /** Code of the error RetrieveChallenge answers (gRPC code; REST HTTP status mapped back). */
  retrieveChallengeErrorCode(id: string): Promise<number>;
  createInstance(challengeId: string, sourceId: string): Promise<InstanceSeen>;
  retrieveInstance(challengeId: string, sourceId: string): Promise<InstanceSeen>;
  queryInstances(sourceId: string): Promise<InstanceSeen[]>;
  renewInstance(challengeId: string, sourceId: string): Promise<InstanceSeen>;
  deleteInstance(challengeId: string, sourceId: string): Promise<void>;
  retrieveInstanceErrorCode(challengeId: string, sourceId: string): Promise<number>;
}

const RFC3339_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;

function instanceFromJson(raw: unknown): InstanceSeen {
  const i = raw as Record<string, unknown>;
  for (const key of ['since', 'lastRenew']) expect(i[key]).toMatch(RFC3339_UTC);
  if (i.until !== undefined) expect(i.until).toMatch(RFC3339_UTC);
  return {
    challengeId: i.challengeId as string,
    sourceId: i.sourceId as string,
    since: Date.parse(i.since as string),
    lastRenew: Date.parse(i.lastRenew as string),
    until: i.until === undefined ? undefined : Date.parse(i.until as string),
    connectionInfo: i.connectionInfo as string,
    flag: i.flag as string | undefined,
    flags: i.flags as string[],
    additional: i.additional as Record<string, string>,
  };
}

function challengeFromJson(raw: unknown): ChallengeSeen {
  const c = raw as Record<string, unknown>;
  if (c.timeout !== null) expect(c.timeout).toMatch(/^\d+(\.\d+)?s$/);
  if (c.until !== null) expect(c.until).toMatch(RFC3339_UTC);
  return {
    id: c.id as string,
    scenario: c.scenario as string,
    timeoutSeconds: c.timeout === null ? null : parseFloat(c.timeout as string),
    until: c.until === null ? null : Date.parse(c.until as string),
    instances: (c.instances as unknown[]).map(instanceFromJson),
    additional: c.additional as Record<string, string>,
    min: c.min as string,
    max: c.max as string,
  };
}

function instanceFromGrpc(raw: unknown): InstanceSeen {
  const i = raw as Record<string, unknown>;
  return {
    challengeId: i.challengeId as string,
    sourceId: i.sourceId as string,
    since: timestampMs(i.since),
    lastRenew: timestampMs(i.lastRenew),
    until: i.until === undefined || i.until === null ? undefined : timestampMs(i.until),
    connectionInfo: i.connectionInfo as string,
    flag: i.flag === undefined || i.flag === null ? undefined : (i.flag as string),
    flags: i.flags as string[],
    additional: i.additional as Record<string, string>,
  };
}

function challengeFromGrpc(raw: unknown): ChallengeSeen {
  const c = raw as Record<string, unknown>;
  const timeout = c.timeout as { seconds: string; nanos: number } | null;
  return {
    id: c.id as string,
    scenario: c.scenario as string,
    timeoutSeconds: timeout === null ? null : Number(timeout.seconds) + timeout.nanos / 1e9,
    until: c.until === null ? null : timestampMs(c.until),
    instances: (c.instances as unknown[]).map(instanceFromGrpc),
    additional: c.additional as Record<string, string>,
    min: c.min as string,
    max: c.max as string,
  };
}

/** HTTP status → gRPC code, for the few statuses these steps expect. */
const CODE_OF_HTTP: Record<number, number> = { 404: 5, 409: 6, 400: 3, 500: 13 };

function restApi(svc: ApiApp): Api {
  const ok = async (res: Response): Promise<unknown> => {
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return JSON.parse(text) as unknown;
  };
  const errorCode = async (res: Response): Promise<number> => {
    const body = (await res.json()) as { code: number };
    expect(CODE_OF_HTTP[res.status]).toBe(body.code);
    return body.code;
  };
  const results = async (res: Response): Promise<unknown[]> => {
    expect(res.status).toBe(200);
    const lines = await ndjson(res);
    // Like grpc-gateway, the content type is set with the first message (none when empty).
    if (lines.length > 0) expect(res.headers.get('content-type')).toContain('application/json');
    for (const line of lines) expect(Object.keys(line)).toEqual(['result']);
    return lines.map((l) => l.result);
  };
  const path = (c: string, s: string): string =>
    `/api/v1/instance/${encodeURIComponent(c)}/${encodeURIComponent(s)}`;
  return {
    createChallenge: async (id, scenario, timeoutSeconds) =>
      challengeFromJson(
        await ok(
          await svc.rest(
            '/api/v1/challenge',
            jsonInit('POST', { id, scenario, timeout: `${timeoutSeconds}s` }),
          ),
        ),
      ),
    retrieveChallenge: async (id) =>
      challengeFromJson(await ok(await svc.rest(`/api/v1/challenge/${id}`))),
    queryChallenges: async () =>
      (await results(await svc.rest('/api/v1/challenge'))).map(challengeFromJson),
    updateChallenge: async (id, body, mask) =>
      challengeFromJson(
        await ok(
          await svc.rest(
            `/api/v1/challenge/${id}`,
            jsonInit('PATCH', {
              scenario: body.scenario,
              additional: body.additional,
              updateStrategy: body.strategy,
              updateMask: mask.join(','),
            }),
          ),
        ),
      ),
    deleteChallenge: async (id) => {
      expect(await ok(await svc.rest(`/api/v1/challenge/${id}`, { method: 'DELETE' }))).toEqual({});
    },
    retrieveChallengeErrorCode: async (id) => errorCode(await svc.rest(`/api/v1/challenge/${id}`)),
    createInstance: async (challengeId, sourceId) =>
      instanceFromJson(
        await ok(await svc.rest('/api/v1/instance', jsonInit('POST', { challengeId, sourceId }))),
      ),
    retrieveInstance: async (c, s) => instanceFromJson(await ok(await svc.rest(path(c, s)))),
    queryInstances: async (sourceId) =>
      (await results(await svc.rest(`/api/v1/instance?sourceId=${sourceId}`))).map(
        instanceFromJson,
      ),
    renewInstance: async (c, s) =>
      instanceFromJson(await ok(await svc.rest(path(c, s), jsonInit('PATCH', {})))),
    deleteInstance: async (c, s) => {
      expect(await ok(await svc.rest(path(c, s), { method: 'DELETE' }))).toEqual({});
    },
    retrieveInstanceErrorCode: async (c, s) => errorCode(await svc.rest(path(c, s))),
  };
}

function grpcApi(svc: ApiApp): Api {
  const { grpc } = svc;
  const challenge = (method: string): ((req: object) => Promise<Record<string, unknown>>) =>
    grpc.unary(grpc.challenge, method);
  const instance = (method: string): ((req: object) => Promise<Record<string, unknown>>) =>
    grpc.unary(grpc.instance, method);
  const errorCode = async (call: Promise<unknown>): Promise<number> => {
    const err = await grpcError(call);
    expect(grpcStatusOf(err)?.code).toBe(err.code);
    return err.code;
  };
  return {
    createChallenge: async (id, scenario, timeoutSeconds) =>
      challengeFromGrpc(
        await challenge('CreateChallenge')({
          id,
          scenario,
          timeout: { seconds: String(timeoutSeconds), nanos: 0 },
        }),
      ),
    retrieveChallenge: async (id) =>
      challengeFromGrpc(await challenge('RetrieveChallenge')({ id })),
    queryChallenges: async () =>
      (await grpc.stream(grpc.challenge, 'QueryChallenge')({})).map(challengeFromGrpc),
    updateChallenge: async (id, body, mask) =>
      challengeFromGrpc(
        await challenge('UpdateChallenge')({
          id,
          scenario: body.scenario,
          additional: body.additional,
          updateStrategy: body.strategy,
          updateMask: { paths: mask },
        }),
      ),
    deleteChallenge: async (id) => {
      expect(await challenge('DeleteChallenge')({ id })).toEqual({});
    },
    retrieveChallengeErrorCode: (id) => errorCode(challenge('RetrieveChallenge')({ id })),
    createInstance: async (challengeId, sourceId) =>
      instanceFromGrpc(await instance('CreateInstance')({ challengeId, sourceId })),
    retrieveInstance: async (challengeId, sourceId) =>
      instanceFromGrpc(await instance('RetrieveInstance')({ challengeId, sourceId })),
    queryInstances: async (sourceId) =>
      (await grpc.stream(grpc.instance, 'QueryInstance')({ sourceId })).map(instanceFromGrpc),
    renewInstance: async (challengeId, sourceId) =>
      instanceFromGrpc(await instance('RenewInstance')({ challengeId, sourceId })),
    deleteInstance: async (challengeId, sourceId) => {
      expect(await instance('DeleteInstance')({ challengeId, sourceId })).toEqual({});
    },
    retrieveInstanceErrorCode: (challengeId, sourceId) =>
      errorCode(instance('RetrieveInstance')({ challengeId, sourceId })),
  };
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
/** The flag the example computes: `<prefix>{<24 hex>}`. */
const flagWithPrefix = (prefix: string): RegExp => new RegExp(`^${prefix}\\{[0-9a-f]{24}\\}$`);
const TIMEOUT_S = 600;

let svc: ApiApp;
let scenario: string;

beforeAll(async () => {
  svc = await bootApiApp();
  scenario = await orasPush(
    inject('registry'),
    'lifecycle/nodejs-flag-server:v1',
    join(EXAMPLES, 'nodejs-flag-server'),
  );
});
afterAll(async () => {
  await svc?.close();
});

describe.each([
  ['REST', restApi],
  ['gRPC', grpcApi],
] as const)('lifecycle over %s', (transport, makeApi) => {
  const id = `life-${transport.toLowerCase()}`;
  const source = `player-${transport.toLowerCase()}`;
  let api: Api;
  let instance: InstanceSeen;

  beforeAll(() => {
    api = makeApi(svc);
  });

  it('should create the challenge and echo it when the scenario previews', async () => {
    const created = await api.createChallenge(id, scenario, TIMEOUT_S);
    expect(created).toEqual({
      id,
      scenario,
      timeoutSeconds: TIMEOUT_S,
      until: null,
      instances: [],
      additional: {},
      min: '0',
      max: '0',
    });
    expect(existsSync(join(svc.dir, 'chall', md5(id)))).toBe(true);
  });

  it('should retrieve the challenge when it exists', async () => {
    expect(await api.retrieveChallenge(id)).toEqual({
      id,
      scenario,
      timeoutSeconds: TIMEOUT_S,
      until: null,
      instances: [],
      additional: {},
      min: '0',
      max: '0',
    });
  });

  it('should stream the challenge when querying challenges', async () => {
    const all = await api.queryChallenges();
    expect(all.map((c) => c.id)).toContain(id);
    expect(all.find((c) => c.id === id)?.timeoutSeconds).toBe(TIMEOUT_S);
  });

  it('should deploy an instance whose TCP service answers its flag when creating one', async () => {
    const before = Date.now();
    instance = await api.createInstance(id, source);
    const after = Date.now();
    expect(instance).toMatchObject({ challengeId: id, sourceId: source, additional: {} });
    expect(instance.flags).toHaveLength(1);
    expect(instance.flags[0]).toMatch(flagWithPrefix('CTF'));
    expect(instance.flag).toBe(instance.flags[0]);
    expect(instance.connectionInfo).toMatch(/^nc 127\.0\.0\.1 \d+$/);
    expect(instance.since).toBeGreaterThanOrEqual(before - 1000);
    expect(instance.since).toBeLessThanOrEqual(after + 1000);
    expect(instance.lastRenew).toBe(instance.since);
    expect(instance.until).toBeDefined();
    expect(Math.abs((instance.until ?? 0) - (instance.since + TIMEOUT_S * 1000))).toBeLessThan(
      5_000,
    );
    expect(await readBanner(instance.connectionInfo)).toBe(instance.flags[0]);
  });

  it('should list the claimed instance in its challenge when retrieving it', async () => {
    const challenge = await api.retrieveChallenge(id);
    expect(challenge.instances).toEqual([instance]);
  });

  it('should retrieve the instance as created when it exists', async () => {
    expect(await api.retrieveInstance(id, source)).toEqual(instance);
  });

  it('should stream the instance of the source when querying by source', async () => {
    expect(await api.queryInstances(source)).toEqual([instance]);
    expect(await api.queryInstances(`${source}-nobody`)).toEqual([]);
  });

  it('should move until and lastRenew when renewing the instance', async () => {
    // Renewed in a later second than the last renewal, so that it shows at any precision.
    await vi.waitFor(
      () => {
        if (Math.floor(Date.now() / 1_000) <= Math.floor(instance.lastRenew / 1_000)) {
          throw new Error('still in the second of the last renewal');
        }
      },
      { timeout: 5_000, interval: 50 },
    );
    const renewed = await api.renewInstance(id, source);
    expect(renewed.lastRenew).toBeGreaterThan(instance.lastRenew);
    expect(renewed.until).toBeGreaterThan(instance.until ?? 0);
    expect(Math.abs((renewed.until ?? 0) - (renewed.lastRenew + TIMEOUT_S * 1000))).toBeLessThan(
      5_000,
    );
    expect(renewed.since).toBe(instance.since);
    expect(renewed.connectionInfo).toBe(instance.connectionInfo);
    const stored = await api.retrieveInstance(id, source);
    expect([stored.lastRenew, stored.until]).toEqual([renewed.lastRenew, renewed.until]);
    instance = stored;
  });

  it.each([
    ['update_in_place', 'INPLACE'],
    ['blue_green', 'BLUEGREEN'],
    ['recreate', 'RECREATE'],
  ] as const)(
    'should redeploy the instance with the new flag prefix when updating additional with %s',
    async (strategy, prefix) => {
      const old = instance;
      const updated = await api.updateChallenge(
        id,
        { scenario, additional: { prefix }, strategy },
        ['additional'],
      );
      expect(updated).toMatchObject({ id, scenario, additional: { prefix } });
      expect(updated.instances).toHaveLength(1);

      const now = await api.retrieveInstance(id, source);
      expect(updated.instances[0]).toEqual(now);
      expect(now.flags).toHaveLength(1);
      expect(now.flags[0]).toMatch(flagWithPrefix(prefix));
      expect(now.flag).toBe(now.flags[0]);
      // Same record: source, since and lastRenew stay (only blue_green changes the identity).
      expect(now).toMatchObject({ challengeId: id, sourceId: source, since: old.since });
      expect(now.lastRenew).toBe(old.lastRenew);
      if (strategy !== 'blue_green') {
        // Same identity, so the same flag body under the new prefix.
        expect(now.flags[0]?.slice(prefix.length)).toBe(old.flags[0]?.replace(/^[A-Z]+/, ''));
      }
      expect(await readBanner(now.connectionInfo)).toBe(now.flags[0]);
      if (now.connectionInfo !== old.connectionInfo) {
        expect(await tcpClosed(old.connectionInfo)).toBe(true);
      }
      // One record and one stack: blue_green's old ones are gone, not orphaned.
      expect(readdirSync(join(svc.dir, 'chall', md5(id), 'instance'))).toHaveLength(1);
      expect(readdirSync(join(svc.dir, 'pulumi', 'stacks', md5(id)))).toHaveLength(1);
      instance = now;
    },
  );

  it('should run no `up` nor `destroy` when the update changes nothing', async () => {
    // Pulumi's checkpoints of the challenge's stacks: any `up` or `destroy` rewrites them.
    const checkpoints = join(
      svc.dir,
      'pulumi',
      'backend',
      '.pulumi',
      'stacks',
      'nodejs-flag-server',
    );
    const stamp = (): string[] =>
      readdirSync(checkpoints).map((f) => `${f}@${statSync(join(checkpoints, f)).mtimeMs}`);
    const before = stamp();
    expect(before.length).toBeGreaterThan(0);
    const iac = svc.app.get(IacEngine);
    const ups = vi.spyOn(iac, 'up');
    const destroys = vi.spyOn(iac, 'destroy');
    const updated = await api.updateChallenge(
      id,
      { scenario, additional: { prefix: 'RECREATE' }, strategy: 'recreate' },
      ['scenario', 'additional'],
    );
    await svc.app.get(BackgroundTasks).drain();
    expect([ups.mock.calls, destroys.mock.calls]).toEqual([[], []]);
    ups.mockRestore();
    destroys.mockRestore();
    expect(stamp()).toEqual(before);
    expect(updated.instances).toHaveLength(1);
    const now = await api.retrieveInstance(id, source);
    expect([now.connectionInfo, now.flags]).toEqual([instance.connectionInfo, instance.flags]);
    expect(await readBanner(now.connectionInfo)).toBe(instance.flags[0]);
    instance = now;
  });

  it('should destroy the TCP service and forget the instance when deleting it', async () => {
    await api.deleteInstance(id, source);
    expect(await tcpClosed(instance.connectionInfo)).toBe(true);
    expect(await api.retrieveInstanceErrorCode(id, source)).toBe(5);
    expect(await api.queryInstances(source)).toEqual([]);
    expect((await api.retrieveChallenge(id)).instances).toEqual([]);
  });

  it('should remove the challenge and its directory when deleting it', async () => {
    await api.deleteChallenge(id);
    expect(await api.retrieveChallengeErrorCode(id)).toBe(5);
    expect((await api.queryChallenges()).map((c) => c.id)).not.toContain(id);
    expect(existsSync(join(svc.dir, 'chall', md5(id)))).toBe(false);
    const stacks = join(svc.dir, 'pulumi', 'stacks', md5(id));
    expect(existsSync(stacks) ? readdirSync(stacks) : []).toEqual([]);
  });
});

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FsStateStore } from '../../src/adapters/state/fs-state-store.adapter';
import type { Instance } from '../../src/shared/domain';
import { BackgroundTasks } from '../../src/shared/background-tasks';
import type { RpcStatusJson } from '../../src/shared/transport/rpc-status';
import {
  bootApiApp,
  grpcError,
  grpcStatusOf,
  jsonInit,
  ncTarget,
  readBanner,
  tcpClosed,
  type ApiApp,
} from '../support/api-app';
import { outputsOnlyScenario } from '../support/api-scenarios';
import { pidListeningOn } from '../support/listening-process';
import { orasPush } from '../support/oras';
import { EXAMPLES, scenarioFrom, scenarioOf } from '../support/scenarios';
import { useToolchainPath } from '../support/toolchain';

/**
 * Readiness end to end (real Pulumi CLI, real registry, real files): an instance whose scenario
 * exports `readiness` is handed out only once its service answers; one that never does is
 * removed without a trace and the create fails with INSTANCE_NOT_READY; a pooled instance whose
 * service died is replaced, never handed out; a scenario without `readiness` is served as before.
 */

const T = 'type.googleapis.com/google.rpc.';
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const SLOW_PROJECT = 'nodejs-slow-start';
/** The flag nodejs-slow-start computes: `CTF{<24 hex>}`. */
const FLAG = /^CTF\{[0-9a-f]{24}\}$/;

/** The instance records of a challenge, read from DIR as another replica would. */
function recordsOf(dir: string, challengeId: string): Promise<Instance[]> {
  return new FsStateStore({ dir }).listInstances(challengeId);
}
/** Identities that have a stack project directory (`DIR/pulumi/stacks/<md5>/<identity>`). */
function stackDirsOf(dir: string, challengeId: string): string[] {
  const root = join(dir, 'pulumi', 'stacks', md5(challengeId));
  return existsSync(root) ? readdirSync(root).sort() : [];
}
/** Instance directories of a challenge under DIR/chall. */
function recordDirsOf(dir: string, challengeId: string): string[] {
  const root = join(dir, 'chall', md5(challengeId), 'instance');
  return existsSync(root) ? readdirSync(root).sort() : [];
}
/** The raw info.json of an instance: what the record holds beyond the API. */
function rawRecord(dir: string, challengeId: string, identity: string): Record<string, unknown> {
  const path = join(dir, 'chall', md5(challengeId), 'instance', identity, 'info.json');
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}
/** Every stack of the service's Pulumi backend, as `pulumi stack ls` lists them. */
function backendStacks(svc: ApiApp): string[] {
  const out = execFileSync('pulumi', ['stack', 'ls', '--all', '--json'], {
    cwd: svc.scratch,
    encoding: 'utf8',
    env: {
      ...process.env,
      PULUMI_BACKEND_URL: `file://${join(svc.dir, 'pulumi', 'backend')}`,
      PULUMI_CONFIG_PASSPHRASE: '',
    },
  });
  return (JSON.parse(out) as { name: string }[]).map((s) => s.name);
}

async function createChallenge(svc: ApiApp, body: Record<string, unknown>): Promise<void> {
  const res = await svc.rest('/api/v1/challenge', jsonInit('POST', body));
  expect(res.status, await res.text()).toBe(200);
}

/** CreateInstance over REST or gRPC; the connection info it answered. */
async function createInstance(
  svc: ApiApp,
  via: 'REST' | 'gRPC',
  challengeId: string,
  sourceId: string,
): Promise<string> {
  if (via === 'gRPC') {
    const out = await svc.grpc.unary(
      svc.grpc.instance,
      'CreateInstance',
    )({
      challengeId,
      sourceId,
    });
    return String(out.connectionInfo);
  }
  const res = await svc.rest('/api/v1/instance', jsonInit('POST', { challengeId, sourceId }));
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return String((JSON.parse(text) as Record<string, unknown>).connectionInfo);
}

async function deleteInstance(svc: ApiApp, challengeId: string, sourceId: string): Promise<void> {
  const res = await svc.rest(`/api/v1/instance/${challengeId}/${sourceId}`, { method: 'DELETE' });
  expect(res.status, await res.text()).toBe(200);
}

/** Runs `work` on each item, at most `limit` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

let registry: string;
let scratch: string;
let slowStart: string;
let slowStartWithoutReadiness: string;
let outputsOnly: string;
let flagServer: string;

beforeAll(async () => {
  useToolchainPath();
  registry = inject('registry');
  scratch = mkdtempSync(join(tmpdir(), 'cm-readiness-'));
  // The same service without its `readiness` output: what a scenario written before it looks like.
  const example = readFileSync(join(EXAMPLES, SLOW_PROJECT, 'index.js'), 'utf8');
  const withoutReadiness = example.replace(/^exports\.readiness = .*$/m, '');
  expect(withoutReadiness).not.toBe(example);
  [slowStart, slowStartWithoutReadiness, outputsOnly, flagServer] = await Promise.all([
    orasPush(registry, 'readiness/slow-start:v1', join(EXAMPLES, SLOW_PROJECT)),
    orasPush(
      registry,
      'readiness/slow-start-no-readiness:v1',
      scenarioFrom(SLOW_PROJECT, scratch, { 'index.js': withoutReadiness }),
    ),
    orasPush(
      registry,
      'readiness/outputs-only:v1',
      scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('readiness')),
    ),
    orasPush(registry, 'readiness/flag-server:v1', join(EXAMPLES, 'nodejs-flag-server')),
  ]);
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('a service that starts listening after its deployment', () => {
  let svc: ApiApp;
  const id = 'slow';
  const sources = Array.from({ length: 20 }, (_, k) => `team-${k}`);

  beforeAll(async () => {
    svc = await bootApiApp({ JANITOR_TICKER: '0' });
    await createChallenge(svc, { id, scenario: slowStart, timeout: '600s' });
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('should answer CreateInstance only once the port accepts connections, for each of 20 sources', async () => {
    const infos = new Map<string, string>();
    // A few at a time, over both transports; each answer is checked at once, with one attempt.
    await eachLimited(sources, 4, async (source) => {
      const via = Number(source.split('-')[1]) % 2 === 0 ? 'REST' : 'gRPC';
      const info = await createInstance(svc, via, id, source);
      expect(await readBanner(info), `${via} ${source}`).toMatch(FLAG);
      infos.set(source, info);
    });
    expect(new Set(infos.values()).size).toBe(sources.length);

    // The record keeps the probe, for claims to check without asking Pulumi.
    for (const instance of await recordsOf(svc.dir, id)) {
      const { port } = ncTarget(instance.connectionInfo);
      expect(rawRecord(svc.dir, id, instance.identity).readiness).toEqual([
        `tcp://127.0.0.1:${port}`,
      ]);
    }

    await eachLimited(sources, 4, (source) => deleteInstance(svc, id, source));
    for (const info of infos.values()) expect(await tcpClosed(info)).toBe(true);
    expect(recordDirsOf(svc.dir, id)).toEqual([]);
    expect(stackDirsOf(svc.dir, id)).toEqual([]);
  });
});

describe('a service that never answers (READINESS_TIMEOUT=3s)', () => {
  let svc: ApiApp;
  const id = 'never';

  beforeAll(async () => {
    svc = await bootApiApp({ JANITOR_TICKER: '0', READINESS_TIMEOUT: '3s' });
    // Ten minutes before it listens: far past the readiness timeout.
    await createChallenge(svc, {
      id,
      scenario: slowStart,
      timeout: '600s',
      additional: { delay: '600' },
    });
  });
  afterAll(async () => {
    await svc?.close();
  });

  /** Nothing of the failed creations: no record, no stack directory, no stack in the backend. */
  function expectNothingLeft(): void {
    expect(recordDirsOf(svc.dir, id)).toEqual([]);
    expect(stackDirsOf(svc.dir, id)).toEqual([]);
    expect(backendStacks(svc)).toEqual([]);
  }

  it('should answer UNAVAILABLE (503) with reason INSTANCE_NOT_READY over REST and leave nothing', async () => {
    const res = await svc.rest(
      '/api/v1/instance',
      jsonInit('POST', { challengeId: id, sourceId: 'late' }),
    );
    const body = (await res.json()) as RpcStatusJson;
    expect(res.status).toBe(503);
    expect(body).toEqual({
      code: 14,
      message: 'Instance did not become ready within 3s.',
      details: [
        {
          '@type': `${T}ErrorInfo`,
          reason: 'INSTANCE_NOT_READY',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { challenge_id: id, source_id: 'late' },
        },
      ],
    });
    expect((await svc.rest(`/api/v1/instance/${id}/late`)).status).toBe(404);
    expectNothingLeft();
  });

  it('should answer UNAVAILABLE with the same status over gRPC and leave nothing', async () => {
    const err = await grpcError(
      svc.grpc.unary(svc.grpc.instance, 'CreateInstance')({ challengeId: id, sourceId: 'later' }),
    );
    expect(err.code).toBe(14);
    expect(grpcStatusOf(err)).toMatchObject({
      code: 14,
      message: 'Instance did not become ready within 3s.',
      details: [
        {
          reason: 'INSTANCE_NOT_READY',
          metadata: { challenge_id: id, source_id: 'later' },
        },
      ],
    });
    expectNothingLeft();
  });
});

describe('a pooled instance whose service died', () => {
  let svc: ApiApp;
  const id = 'pooled';
  const drain = (): Promise<void> => svc.app.get(BackgroundTasks).drain();
  const pooledOf = async (): Promise<Instance[]> =>
    (await recordsOf(svc.dir, id)).filter((i) => i.sourceId === undefined);

  beforeAll(async () => {
    svc = await bootApiApp({ JANITOR_TICKER: '0' });
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('should be replaced and never handed out; the claim answers a working instance', async () => {
    await createChallenge(svc, { id, scenario: slowStart, timeout: '600s', min: 1 });
    await drain();
    const [dead, ...others] = await pooledOf();
    expect(others).toEqual([]);
    // It entered the pool answering.
    expect(await readBanner(dead!.connectionInfo)).toMatch(FLAG);
    const pid = pidListeningOn(ncTarget(dead!.connectionInfo).port);
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    expect(await tcpClosed(dead!.connectionInfo)).toBe(true);

    const got = await createInstance(svc, 'REST', id, 'p1');
    expect(got).not.toBe(dead!.connectionInfo);
    expect(await readBanner(got)).toMatch(FLAG);

    // The dead one removed, the pool topped up with one that answers.
    await drain();
    const records = await recordsOf(svc.dir, id);
    expect(records.map((i) => i.identity)).not.toContain(dead!.identity);
    expect(stackDirsOf(svc.dir, id)).toEqual(records.map((i) => i.identity).sort());
    expect(records.filter((i) => i.sourceId === 'p1').map((i) => i.connectionInfo)).toEqual([got]);
    const [refill, ...more] = await pooledOf();
    expect(more).toEqual([]);

    // The refill is handed out as a pooled instance is: as it is, and answering.
    const claimed = await createInstance(svc, 'gRPC', id, 'p2');
    expect(claimed).toBe(refill!.connectionInfo);
    expect(await readBanner(claimed)).toMatch(FLAG);

    await drain();
    const res = await svc.rest(`/api/v1/challenge/${id}`, { method: 'DELETE' });
    expect(res.status, await res.text()).toBe(200);
    for (const info of [got, claimed]) expect(await tcpClosed(info)).toBe(true);
    expect(recordDirsOf(svc.dir, id)).toEqual([]);
  });
});

describe('scenarios without readiness', () => {
  let svc: ApiApp;

  beforeAll(async () => {
    svc = await bootApiApp({ JANITOR_TICKER: '0' });
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('should hand the instance out as soon as its stack is up, with nothing stored for readiness', async () => {
    // The service listens only in ten minutes: no wait for it without a `readiness` output.
    await createChallenge(svc, {
      id: 'unprobed',
      scenario: slowStartWithoutReadiness,
      timeout: '600s',
      additional: { delay: '600' },
    });
    const info = await createInstance(svc, 'REST', 'unprobed', 'p1');
    expect(await readBanner(info).catch((err: NodeJS.ErrnoException) => err.code)).toBe(
      'ECONNREFUSED',
    );
    const [record] = await recordsOf(svc.dir, 'unprobed');
    expect(rawRecord(svc.dir, 'unprobed', record!.identity)).not.toHaveProperty('readiness');
    await deleteInstance(svc, 'unprobed', 'p1');
    expect(recordDirsOf(svc.dir, 'unprobed')).toEqual([]);

    await createChallenge(svc, { id: 'outputs', scenario: outputsOnly, timeout: '600s' });
    const outputs = await createInstance(svc, 'gRPC', 'outputs', 'p1');
    expect(outputs).toMatch(/^http:\/\/[0-9a-f]{16}\.ctf\.invalid$/);
    const [plain] = await recordsOf(svc.dir, 'outputs');
    expect(rawRecord(svc.dir, 'outputs', plain!.identity)).not.toHaveProperty('readiness');
    await deleteInstance(svc, 'outputs', 'p1');
  });

  it('should record the probe the flag-server example exports and serve its flag at once', async () => {
    await createChallenge(svc, { id: 'flag-server', scenario: flagServer, timeout: '600s' });
    const info = await createInstance(svc, 'REST', 'flag-server', 'p1');
    expect(await readBanner(info)).toMatch(FLAG);
    const [record] = await recordsOf(svc.dir, 'flag-server');
    expect(rawRecord(svc.dir, 'flag-server', record!.identity).readiness).toEqual([
      `tcp://127.0.0.1:${ncTarget(info).port}`,
    ]);
    await deleteInstance(svc, 'flag-server', 'p1');
    expect(await tcpClosed(info)).toBe(true);
  });
});

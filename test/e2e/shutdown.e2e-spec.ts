import type { ServiceError } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { FsStateStore } from '../../src/adapters/state/fs-state-store.adapter';
import { ShuttingDownError } from '../../src/shared/errors';
import { statusOfDomainError } from '../../src/shared/errors/error-status';
import { rpcStatusToJson, type RpcStatusJson } from '../../src/shared/transport/rpc-status';
import { eventually, jsonInit } from '../support/api-app';
import { gatedUpScenario } from '../support/api-scenarios';
import { connectApiClients, statusDetails, type ApiClients } from '../support/grpc-client';
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
 * SIGTERM on the plain process (`node dist/main.js`), as a rolling update sends it: readiness
 * flips at once, liveness does not, calls in flight on both transports finish, new calls are
 * refused with UNAVAILABLE in the error table's shape, background spin-ups are cancelled and
 * cleaned up, and the process exits 0. Also what a create whose client went away leaves.
 */

const GRPC_UNAVAILABLE = 14;
/** What a refused call answers: the error table's row of ShuttingDownError. */
const UNAVAILABLE_BODY = rpcStatusToJson(statusOfDomainError(new ShuttingDownError()));

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

let scratch: string;
let markers: string;
let gated: string;
let etcdEndpoint: string;
const replicas: Replica[] = [];
const clients: ApiClients[] = [];

/** A fresh DIR per test, so that what a test leaves on disk is its own. */
let dir: string;

beforeAll(async () => {
  useToolchainPath();
  etcdEndpoint = inject('etcdEndpoint');
  scratch = mkdtempSync(join(tmpdir(), 'cm-shutdown-'));
  markers = join(scratch, 'markers');
  mkdirSync(markers);
  [gated] = await Promise.all([
    orasPush(
      inject('registry'),
      'shutdown/gated-up:v1',
      scenarioOf(scratch, 'gated', gatedUpScenario(markers)),
    ),
    buildServiceIfStale(),
  ]);
});

afterEach(async () => {
  rmSync(join(markers, 'hold'), { force: true });
  for (const c of clients.splice(0)) c.close();
  await Promise.all(replicas.splice(0).map((r) => r.stop()));
  if (dir) killProcessesWithEnv('DIR', dir);
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function start(name: string, env: Record<string, string> = {}): Promise<Replica> {
  const replica = await startReplica({
    name,
    dir,
    cache: join(scratch, `cache-${name}`),
    env: {
      ETCD_ENDPOINT: etcdEndpoint,
      // The sweep at boot and no other: none runs in the middle of a test.
      JANITOR_TICKER: '1h',
      ...env,
    },
  });
  replicas.push(replica);
  return replica;
}

function grpcOf(replica: Replica): ApiClients {
  const c = connectApiClients(replica.address);
  clients.push(c);
  return c;
}

function exitCode(replica: Replica, withinMs: number): Promise<number | null> {
  const { child } = replica;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${replica.name} still running after ${withinMs} ms`)),
      withinMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

const started = (): string[] => readdirSync(markers).filter((f) => f.startsWith('started-'));
const stackDirsOf = (challengeId: string): string[] => {
  const root = join(dir, 'pulumi', 'stacks', md5(challengeId));
  return existsSync(root) ? readdirSync(root) : [];
};

function newDir(): void {
  dir = join(scratch, `data-${Date.now()}`);
  for (const f of readdirSync(markers)) unlinkSync(join(markers, f));
}

async function createChallenge(replica: Replica, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${replica.base}/api/v1/challenge`, jsonInit('POST', body));
  expect(res.status, await res.clone().text()).toBe(200);
}

async function grpcFailure(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the gRPC call to fail');
}

describe('SIGTERM on the plain process', () => {
  it('should finish REST and gRPC calls in flight, refuse new ones with UNAVAILABLE, flip readiness at once and exit 0', async () => {
    newDir();
    const a = await start('A', { SHUTDOWN_GRACE: '2m' });
    const grpc = grpcOf(a);
    expect((await fetch(`${a.base}/readyz`)).status).toBe(200);
    await createChallenge(a, { id: 'drain', scenario: gated, timeout: '600s' });

    // Two creates held in the middle of their `up`, one per transport.
    writeFileSync(join(markers, 'hold'), '');
    const rest = fetch(
      `${a.base}/api/v1/instance`,
      jsonInit('POST', { challengeId: 'drain', sourceId: 'rest' }),
    );
    const overGrpc = grpc.unary(
      grpc.instance,
      'CreateInstance',
    )({
      challengeId: 'drain',
      sourceId: 'grpc',
    });
    await eventually(
      'both ups in progress',
      120_000,
      () => Promise.resolve(started().length === 2),
      () => a.output(),
    );

    a.child.kill('SIGTERM');
    const signalledAt = Date.now();
    // The signal reaches the process's event loop asynchronously: a probe sent right away may
    // be served just before it. Readiness flips within the handling of the signal, while the
    // two calls still hold the process up.
    const ready = await vi.waitFor(
      async () => {
        const res = await fetch(`${a.base}/readyz`);
        expect(res.status).toBe(503);
        return res;
      },
      { timeout: 10_000, interval: 20 },
    );
    expect(await ready.json()).toMatchObject({
      status: 'Unavailable',
      failures: { shutdown: 'shutting down' },
    });
    expect(a.running()).toBe(true);
    // Liveness does not flip: the replica is not to be restarted while it drains.
    expect((await fetch(`${a.base}/livez`)).status).toBe(200);

    // New calls: REST (a create and a read) and gRPC (on the open connection and a new one).
    const lateCreate = await fetch(
      `${a.base}/api/v1/instance`,
      jsonInit('POST', { challengeId: 'drain', sourceId: 'late' }),
    );
    expect(lateCreate.status).toBe(503);
    expect((await lateCreate.json()) as RpcStatusJson).toEqual(UNAVAILABLE_BODY);
    const lateRead = await fetch(`${a.base}/api/v1/challenge/drain`);
    expect(lateRead.status).toBe(503);
    expect(await lateRead.json()).toEqual(UNAVAILABLE_BODY);
    for (const client of [grpc, grpcOf(a)]) {
      const err = await grpcFailure(
        client.unary(client.instance, 'CreateInstance')({ challengeId: 'drain', sourceId: 'late' }),
      );
      expect(err.code).toBe(GRPC_UNAVAILABLE);
      expect(err.details).toBe(UNAVAILABLE_BODY.message);
      expect(statusDetails(err.metadata)?.details[0]).toMatchObject({
        reason: 'SERVICE_UNAVAILABLE',
        metadata: { state: 'shutting_down' },
      });
    }
    expect(a.running()).toBe(true);

    // The calls in flight complete normally once their `up` can go on.
    rmSync(join(markers, 'hold'));
    const [restRes, grpcRes] = await Promise.all([rest, overGrpc]);
    const restBody = (await restRes.json()) as Record<string, unknown>;
    expect(restRes.status, JSON.stringify(restBody)).toBe(200);
    expect(restBody).toMatchObject({ challengeId: 'drain', sourceId: 'rest' });
    expect(restBody.connectionInfo).toMatch(/^http:\/\/.+\.ctf\.invalid$/);
    expect(grpcRes).toMatchObject({ challengeId: 'drain', sourceId: 'grpc' });
    expect(await exitCode(a, 30_000)).toBe(0);
    console.log(
      `[shutdown] SIGTERM to exit with 2 calls in flight: ${Date.now() - signalledAt} ms`,
    );

    // What they created is kept, on disk and through another process.
    const records = await new FsStateStore({ dir }).listInstances('drain');
    expect(records.map((r) => r.sourceId).sort()).toEqual(['grpc', 'rest']);
    expect(stackDirsOf('drain').sort()).toEqual(records.map((r) => r.identity).sort());
    const b = await start('B');
    for (const source of ['rest', 'grpc']) {
      expect((await fetch(`${b.base}/api/v1/instance/drain/${source}`)).status).toBe(200);
    }
  });

  it('should cancel a create still in flight when SHUTDOWN_GRACE runs out, clean up its stack and exit 0', async () => {
    newDir();
    const a = await start('A', { SHUTDOWN_GRACE: '1s', IAC_CANCEL_GRACE: '2s' });
    await createChallenge(a, { id: 'late', scenario: gated, timeout: '600s' });
    writeFileSync(join(markers, 'hold'), '');
    const create = fetch(
      `${a.base}/api/v1/instance`,
      jsonInit('POST', { challengeId: 'late', sourceId: 's' }),
    );
    await eventually(
      'the up in progress',
      120_000,
      () => Promise.resolve(started().length === 1),
      () => a.output(),
    );

    a.child.kill('SIGTERM');
    const res = await create;
    expect(res.status, await res.clone().text()).not.toBe(200);
    expect(await exitCode(a, 90_000)).toBe(0);

    expect(await new FsStateStore({ dir }).listInstances('late')).toEqual([]);
    expect(stackDirsOf('late')).toEqual([]);
  });

  it('should cancel a pool spin-up at once, leave no pooled instance nor stack, and exit 0', async () => {
    newDir();
    const a = await start('A', { SHUTDOWN_GRACE: '2m', IAC_CANCEL_GRACE: '2s' });
    writeFileSync(join(markers, 'hold'), '');
    await createChallenge(a, { id: 'pool', scenario: gated, timeout: '600s', min: 1 });
    await eventually(
      'the spin-up in progress',
      120_000,
      () => Promise.resolve(started().length === 1),
      () => a.output(),
    );

    a.child.kill('SIGTERM');
    const signalledAt = Date.now();
    // Not SHUTDOWN_GRACE (2 minutes): no API call is in flight, and the spin-up is cancelled.
    expect(await exitCode(a, 60_000)).toBe(0);
    console.log(
      `[shutdown] SIGTERM to exit with a spin-up in progress: ${Date.now() - signalledAt} ms`,
    );
    expect(await new FsStateStore({ dir }).listInstances('pool')).toEqual([]);
    expect(stackDirsOf('pool')).toEqual([]);
  });
});

describe('a create whose client disconnects', () => {
  it('should run to completion and keep the instance, which the source then retrieves', async () => {
    newDir();
    const a = await start('A');
    await createChallenge(a, { id: 'gone', scenario: gated, timeout: '600s' });
    writeFileSync(join(markers, 'hold'), '');
    const client = new AbortController();
    const create = fetch(`${a.base}/api/v1/instance`, {
      ...jsonInit('POST', { challengeId: 'gone', sourceId: 's' }),
      signal: client.signal,
    });
    await eventually(
      'the up in progress',
      120_000,
      () => Promise.resolve(started().length === 1),
      () => a.output(),
    );
    client.abort();
    await expect(create).rejects.toThrow();
    rmSync(join(markers, 'hold'));

    await eventually(
      'the instance retrievable',
      120_000,
      async () => (await fetch(`${a.base}/api/v1/instance/gone/s`)).status === 200,
      () => a.output(),
    );
    const records = await new FsStateStore({ dir }).listInstances('gone');
    expect(records).toHaveLength(1);
    expect(stackDirsOf('gone')).toEqual([records[0]!.identity]);
    // A retry answers that it exists, rather than deploying a second one.
    const retry = await fetch(
      `${a.base}/api/v1/instance`,
      jsonInit('POST', { challengeId: 'gone', sourceId: 's' }),
    );
    expect(retry.status).toBe(409);
  });
});

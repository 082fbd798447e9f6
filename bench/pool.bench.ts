// Pool benchmark against the built service (node dist/main.js, JANITOR_TICKER=0) over loopback:
// latency of a pooled claim (CreateInstance served from the pool) at 1, 10 and 50 concurrent
// clients over REST and gRPC, then the cost of one fresh creation: end to end from outside, and
// its parts measured on the adapters directly (lock, pull cold/warm, `up`, record write).
// The pool is grown in steps of at most STEP spin-ups at a time (raising `max` with `min`), and
// `max` then caps it, so claims trigger no refill during a round: claims are measured alone.
// Run: npm run bench -- pool
import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PulumiIacEngine } from '../src/adapters/iac/pulumi-iac-engine.adapter';
import { InMemoryDistributedLock } from '../src/adapters/lock/in-memory-distributed-lock.adapter';
import { HttpOciRegistry } from '../src/adapters/oci/http-oci-registry.adapter';
import {
  DEFAULT_OCI_LIMITS,
  DEFAULT_OCI_REQUEST_TIMEOUT_MS,
} from '../src/adapters/oci/http-oci-registry.options';
import { FsStateStore } from '../src/adapters/state/fs-state-store.adapter';
import { lockKeys } from '../src/shared/domain';
import { outputsOnlyScenario } from '../test/support/api-scenarios';
import { connectApiClients } from '../test/support/grpc-client';
import { scenarioOf } from '../test/support/scenarios';
import { startReplica } from '../test/support/replica-process';
import { startRegistry } from '../test/support/services';
import { useToolchainPath } from '../test/support/toolchain';
import { row, summary, timed } from './stats';

/** Spin-ups started at once while growing the pool (two cores). */
const STEP = 10;
/** Per transport: [concurrent clients, claims] (the pool is filled, then drained by batches). */
const PLAN: [number, number][] = [
  [1, 10],
  [10, 10],
  [50, 50],
];
const UPSTREAM = 'upstream v0.6.6 (PR #613): about 640 µs per claim';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  useToolchainPath();
  // The adapters run in this process below: their logs would drown the figures.
  Logger.overrideLogger(['error']);
  const registry = await startRegistry();
  const scratch = mkdtempSync(join(tmpdir(), 'cm-bench-pool-'));
  const ref = `${registry.endpoint}/bench/outputs-only:v1`;
  const scenarioDir = scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('bench'));
  const pusher = new HttpOciRegistry({
    cacheDir: join(scratch, 'push'),
    insecure: true,
    limits: DEFAULT_OCI_LIMITS,
    requestTimeoutMs: DEFAULT_OCI_REQUEST_TIMEOUT_MS,
  });
  await pusher.pushScenario(scenarioDir, ref);
  const dir = join(scratch, 'data');
  const store = new FsStateStore({ dir });
  const service = await startReplica({
    name: 'service',
    dir,
    cache: join(scratch, 'cache'),
    env: { JANITOR_TICKER: '0', LOG_LEVEL: 'error' },
    root: process.cwd(),
  });
  const grpc = connectApiClients(service.address);
  const json = { 'content-type': 'application/json' };
  const api = service.base;
  let source = 0;
  try {
    const send = async (path: string, method: string, body: unknown): Promise<void> => {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: json,
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    };
    const counts = async (): Promise<{ claimed: number; pooled: number }> => {
      const all = await store.listInstances('bench');
      const pooled = all.filter((i) => i.sourceId === undefined).length;
      return { claimed: all.length - pooled, pooled };
    };
    /** Grows the pool to `target` pooled instances, STEP spin-ups at a time; max caps it. */
    const fillTo = async (target: number): Promise<number> => {
      const start = Date.now();
      for (;;) {
        const { claimed, pooled } = await counts();
        if (pooled >= target) break;
        const goal = Math.min(target, pooled + STEP);
        await send('/api/v1/challenge/bench', 'PATCH', {
          min: target,
          max: claimed + goal,
          updateMask: 'min,max',
        });
        while ((await counts()).pooled < goal) await sleep(200);
      }
      return Date.now() - start;
    };
    const claimRest = async (): Promise<void> =>
      send('/api/v1/instance', 'POST', { challengeId: 'bench', sourceId: `s${source++}` });
    const createGrpc = grpc.unary(grpc.instance, 'CreateInstance');
    const claimGrpc = async (): Promise<void> => {
      await createGrpc({ challengeId: 'bench', sourceId: `s${source++}` });
    };

    const [create] = await timed(() =>
      send('/api/v1/challenge', 'POST', { id: 'bench', scenario: ref, timeout: '600s', max: 1 }),
    );
    console.log(`pool benchmark (tiny outputs-only scenario, ${new Date().toISOString()})`);
    row('CreateChallenge (pull + pulumi preview)', `${create.toFixed(0)} ms`);
    let spinUps = 0;
    let spinUpMs = 0;
    for (const [concurrency, claims] of PLAN) {
      for (const [transport, claim] of [
        ['REST', claimRest],
        ['gRPC', claimGrpc],
      ] as const) {
        const samples: number[] = [];
        spinUpMs += await fillTo(claims);
        spinUps += claims;
        for (let r = 0; r < claims / concurrency; r++) {
          const before = await counts();
          const round = await Promise.all(
            Array.from({ length: concurrency }, async () => (await timed(claim))[0]),
          );
          const after = await counts();
          // Every claim was served by the pool (no fresh deployment, no refill).
          if (after.pooled !== before.pooled - concurrency)
            throw new Error(`not all claims were pooled: ${JSON.stringify({ before, after })}`);
          samples.push(...round);
        }
        row(`pooled claim, ${transport}, ${concurrency} concurrent`, summary(samples));
      }
    }
    row('  (reference)', UPSTREAM);
    row(
      'pool growth (service spin-ups, 10 at a time)',
      `${(spinUpMs / spinUps).toFixed(0)} ms per instance`,
    );

    // One fresh creation, from outside (the pool is empty and capped by max).
    const fresh: number[] = [];
    for (let i = 0; i < 3; i++) fresh.push((await timed(claimRest))[0]);
    row('fresh CreateInstance (empty pool), REST', summary(fresh));

    // A second CreateInstance of a source whose fresh creation is still running (a player
    // clicking twice): answered INSTANCE_ALREADY_EXISTS at once, not after the first one's up.
    const firsts: number[] = [];
    const duplicates: number[] = [];
    for (let i = 0; i < 3; i++) {
      const body = JSON.stringify({ challengeId: 'bench', sourceId: `dup-${i}` });
      const post = (): Promise<Response> =>
        fetch(`${api}/api/v1/instance`, { method: 'POST', headers: json, body });
      const first = timed(async () => (await post()).status);
      await sleep(100);
      const [ms, status] = await timed(async () => (await post()).status);
      const [firstMs, firstStatus] = await first;
      if (status !== 409 || firstStatus !== 200)
        throw new Error(`duplicate create answered ${status} (first ${firstStatus})`);
      duplicates.push(ms);
      firsts.push(firstMs);
    }
    row('duplicate CreateInstance during a fresh creation, REST (409)', summary(duplicates));
    row('  the fresh creation it duplicated', summary(firsts));
  } finally {
    grpc.close();
    await service.stop();
  }

  // The parts of a fresh creation, on the adapters directly.
  try {
    const lock = new InMemoryDistributedLock();
    const lockSamples: number[] = [];
    for (let i = 0; i < 200; i++) {
      lockSamples.push(
        (
          await timed(() => lock.withWriteLock(lockKeys.instance('bench', `${i}`), async () => {}))
        )[0],
      );
    }
    const cache = join(scratch, 'adapters-cache');
    const oci = new HttpOciRegistry({
      cacheDir: cache,
      insecure: true,
      limits: DEFAULT_OCI_LIMITS,
      requestTimeoutMs: DEFAULT_OCI_REQUEST_TIMEOUT_MS,
    });
    const [cold, scenario] = await timed(() => oci.fetchScenario(ref));
    const [warm] = await timed(() => oci.fetchScenario(ref));
    const nodeModules = dirname(dirname(dirname(require.resolve('@pulumi/pulumi/package.json'))));
    const engine = new PulumiIacEngine({
      dataDir: join(scratch, 'adapters-data'),
      cacheDir: cache,
      passphrase: 'bench',
      operationTimeoutMs: 600_000,
      cancelGraceMs: 10_000,
      compileTimeoutMs: 600_000,
      programEnv: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      nodeModulesDir: nodeModules,
    });
    const ups: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const identity = `00000000000000a${i}`;
      ups.push(
        (await timed(() => engine.up({ challengeId: 'b', identity, scenario, additional: {} })))[0],
      );
    }
    const writeStore = new FsStateStore({ dir: join(scratch, 'adapters-state') });
    await writeStore.onModuleInit();
    const writes: number[] = [];
    for (let i = 0; i < 200; i++) {
      const now = new Date();
      const identity = i.toString(16).padStart(16, '0');
      writes.push(
        (
          await timed(() =>
            writeStore.saveInstance({
              challengeId: 'b',
              identity,
              since: now,
              lastRenew: now,
              connectionInfo: `http://${identity}.ctf.invalid`,
              flags: [`PLUGIN{${identity}-0}`],
              additional: {},
            }),
          )
        )[0],
      );
    }
    row('fresh creation breakdown: lock (uncontended)', summary(lockSamples));
    row('fresh creation breakdown: pull, cold', `${cold.toFixed(1)} ms`);
    row('fresh creation breakdown: pull, warm', `${warm.toFixed(1)} ms`);
    row('fresh creation breakdown: pulumi up', summary(ups));
    row('fresh creation breakdown: record write', summary(writes));
  } finally {
    await registry.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

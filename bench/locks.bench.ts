// Lock benchmark: what one uncontended acquire + release costs in-process
// (InMemoryDistributedLock) and through etcd (EtcdDistributedLock against a single etcd member
// started here, over loopback), for read and write locks; then the latency of a pooled claim
// with etcd locks (one replica, `node dist/main.js` with ETCD_ENDPOINT, min = max = 10, 10
// sequential CreateInstance over REST, each served from the pool).
// Run: npm run bench -- locks
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdDistributedLock } from '../src/adapters/lock/etcd-distributed-lock.adapter';
import { InMemoryDistributedLock } from '../src/adapters/lock/in-memory-distributed-lock.adapter';
import { FsStateStore } from '../src/adapters/state/fs-state-store.adapter';
import { lockKeys } from '../src/shared/domain';
import type { DistributedLock } from '../src/shared/ports/distributed-lock.port';
import { killProcessesWithEnv, startReplica } from '../test/support/replica-process';
import { startEtcd, startRegistry, type RunningService } from '../test/support/services';
import { useToolchainPath } from '../test/support/toolchain';
import { pushOutputsOnly } from './fixtures';
import { percentile, row, summary, timed } from './stats';

const IN_MEMORY_SAMPLES = 5_000;
const ETCD_SAMPLES = 500;
const WARM_UP = 20;
const POOL = 10;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** p50/p99/max in microseconds (an in-process lock is far below a millisecond). */
function micro(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const us = (ms: number): string => `${(ms * 1_000).toFixed(1)} µs`;
  return `n=${s.length} p50=${us(percentile(s, 50))} p99=${us(percentile(s, 99))} max=${us(s[s.length - 1] ?? NaN)}`;
}

/** Sequential, uncontended acquire + release of `mode` locks on distinct keys. */
async function lockSamples(
  lock: DistributedLock,
  mode: 'read' | 'write',
  n: number,
): Promise<number[]> {
  const once = (i: number): Promise<void> => {
    const key = lockKeys.source('bench', `${mode}-${i}`);
    const work = (): Promise<void> => Promise.resolve();
    return mode === 'read' ? lock.withReadLock(key, work) : lock.withWriteLock(key, work);
  };
  for (let i = 0; i < WARM_UP; i++) await once(-1 - i);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push((await timed(() => once(i)))[0]);
  return samples;
}

async function main(): Promise<void> {
  useToolchainPath();
  console.log(`lock benchmark (uncontended, loopback, ${new Date().toISOString()})`);
  const started: RunningService[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'cm-bench-locks-'));
  try {
    const memory = new InMemoryDistributedLock();
    for (const mode of ['read', 'write'] as const) {
      row(
        `in-process ${mode} lock, acquire + release`,
        micro(await lockSamples(memory, mode, IN_MEMORY_SAMPLES)),
      );
    }

    const etcd = await startEtcd();
    started.push(etcd);
    const lock = new EtcdDistributedLock({ endpoints: [etcd.endpoint], ttlSeconds: 10 });
    try {
      for (const mode of ['read', 'write'] as const) {
        row(
          `etcd ${mode} lock, acquire + release`,
          summary(await lockSamples(lock, mode, ETCD_SAMPLES)),
        );
      }
    } finally {
      await lock.onApplicationShutdown();
    }

    // Pooled claims with etcd locks, from outside, over REST.
    const registry = await startRegistry();
    started.push(registry);
    const ref = await pushOutputsOnly(registry.endpoint, scratch, 'bench-locks');
    const dir = join(scratch, 'data');
    const replica = await startReplica({
      name: 'bench',
      dir,
      cache: join(scratch, 'cache'),
      env: { ETCD_ENDPOINT: etcd.endpoint, JANITOR_TICKER: '0', LOG_LEVEL: 'error' },
      root: process.cwd(),
    });
    try {
      const post = async (path: string, body: unknown): Promise<void> => {
        const res = await fetch(`${replica.base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`POST ${path}: ${res.status} ${text}`);
      };
      const store = new FsStateStore({ dir });
      const pooled = async (): Promise<number> =>
        (await store.listInstances('bench')).filter((i) => i.sourceId === undefined).length;
      // max = min: claims trigger no refill, so each claim is measured alone.
      const [fill] = await timed(async () => {
        await post('/api/v1/challenge', { id: 'bench', scenario: ref, min: POOL, max: POOL });
        const deadline = Date.now() + 600_000;
        while ((await pooled()) < POOL) {
          if (Date.now() > deadline) throw new Error(`the pool did not fill: ${replica.output()}`);
          await sleep(200);
        }
      });
      const claims: number[] = [];
      for (let i = 0; i < POOL; i++) {
        claims.push(
          (
            await timed(() => post('/api/v1/instance', { challengeId: 'bench', sourceId: `s${i}` }))
          )[0],
        );
      }
      if ((await pooled()) !== 0) throw new Error('a claim was not served by the pool');
      row(`pool of ${POOL} filled (etcd locks)`, `${fill.toFixed(0)} ms`);
      row('pooled claim with etcd locks, REST, sequential', summary(claims));
    } finally {
      await replica.stop();
      killProcessesWithEnv('DIR', dir);
    }
  } finally {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

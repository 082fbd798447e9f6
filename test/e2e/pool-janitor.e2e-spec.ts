import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { FsStateStore } from '../../src/adapters/state/fs-state-store.adapter';
import { JanitorService } from '../../src/janitor/janitor.service';
import { BackgroundTasks } from '../../src/shared/background-tasks';
import { IacEngine } from '../../src/shared/ports/iac-engine.port';
import type { Instance } from '../../src/shared/domain';
import {
  bootApiApp,
  eventually,
  jsonInit,
  readBanner,
  tcpClosed,
  timestampMs,
  type ApiApp,
} from '../support/api-app';
import { identityOfOutputsOnly, outputsOnlyScenario } from '../support/api-scenarios';
import { connectApiClients, type ApiClients } from '../support/grpc-client';
import { orasPush } from '../support/oras';
import { slowUpScenario } from '../support/pool-scenarios';
import { EXAMPLES, scenarioOf } from '../support/scenarios';
import {
  buildServiceIfStale,
  killProcessesWithEnv,
  startReplica,
  type Replica,
} from '../support/replica-process';
import { useToolchainPath } from '../support/toolchain';

/**
 * Issue 5 end to end (real Pulumi CLI, real registry, real files): the pool deploys ahead and
 * claims are fast, concurrent claims never share an instance, resizes follow upstream's delta
 * table, the janitor reclaims expired instances and drains expired pools, a crash during a
 * spin-up leaves no orphan stack, and upstream's external janitor still works over gRPC.
 */

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** The instance records of a challenge, read from DIR as another replica would. */
function recordsOf(dir: string, challengeId: string): Promise<Instance[]> {
  return new FsStateStore({ dir }).listInstances(challengeId);
}
async function pooledOf(dir: string, challengeId: string): Promise<Instance[]> {
  return (await recordsOf(dir, challengeId)).filter((i) => i.sourceId === undefined);
}
/** Identities that have a stack project directory (`DIR/pulumi/stacks/<md5>/<identity>`). */
function stackDirsOf(dir: string, challengeId: string): string[] {
  const root = join(dir, 'pulumi', 'stacks', md5(challengeId));
  return existsSync(root) ? readdirSync(root).sort() : [];
}
/** Checkpoints of a project in Pulumi's file backend. */
function checkpointsOf(dir: string, project: string): string[] {
  const root = join(dir, 'pulumi', 'backend', '.pulumi', 'stacks', project);
  return existsSync(root) ? readdirSync(root).filter((f) => f.endsWith('.json')) : [];
}

/** Both transports, for the calls these tests make. */
class Api {
  constructor(
    private readonly base: string,
    private readonly grpc: ApiClients,
  ) {}

  private async rest(path: string, init?: RequestInit): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.base}${path}`, init);
    const text = await res.text();
    expect(res.status, `${init?.method ?? 'GET'} ${path}: ${text}`).toBe(200);
    return JSON.parse(text) as Record<string, unknown>;
  }

  createChallenge(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.rest('/api/v1/challenge', jsonInit('POST', body));
  }

  updateChallenge(id: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const updateMask = Object.keys(body).join(',');
    return this.rest(`/api/v1/challenge/${id}`, jsonInit('PATCH', { ...body, updateMask }));
  }

  /** CreateInstance over REST or gRPC; returns the connection info. */
  async createInstance(via: 'REST' | 'gRPC', challengeId: string, sourceId: string) {
    const out =
      via === 'REST'
        ? await this.rest('/api/v1/instance', jsonInit('POST', { challengeId, sourceId }))
        : await this.grpc.unary(this.grpc.instance, 'CreateInstance')({ challengeId, sourceId });
    expect(out).toMatchObject({ challengeId, sourceId });
    return String(out.connectionInfo);
  }

  /** HTTP status of RetrieveInstance. */
  async retrieveInstanceStatus(challengeId: string, sourceId: string): Promise<number> {
    const res = await fetch(`${this.base}/api/v1/instance/${challengeId}/${sourceId}`);
    await res.text();
    return res.status;
  }
}

let registry: string;
let outputsOnly: string;
let flagServer: string;
let scratch: string;

beforeAll(async () => {
  useToolchainPath();
  registry = inject('registry');
  scratch = mkdtempSync(join(tmpdir(), 'cm-pool-janitor-'));
  [outputsOnly, flagServer] = await Promise.all([
    orasPush(
      registry,
      'pool-janitor/outputs-only:v1',
      scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('pool')),
    ),
    orasPush(registry, 'pool-janitor/flag-server:v1', join(EXAMPLES, 'nodejs-flag-server')),
  ]);
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('pool (service janitor off)', () => {
  let svc: ApiApp;
  let api: Api;
  const drain = (): Promise<void> => svc.app.get(BackgroundTasks).drain();

  beforeAll(async () => {
    svc = await bootApiApp({ JANITOR_TICKER: '0' });
    api = new Api(svc.base, svc.grpc);
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('should hand out a pre-deployed instance without deploying anything for it when min=2', async () => {
    await api.createChallenge({ id: 'fresh', scenario: outputsOnly, timeout: '600s' });
    const fresh = await api.createInstance('REST', 'fresh', 'p0');
    expect(identityOfOutputsOnly(fresh)).not.toBe('none');

    await api.createChallenge({ id: 'pool2', scenario: outputsOnly, timeout: '600s', min: 2 });
    await drain();
    const pooled = await pooledOf(svc.dir, 'pool2');
    expect(pooled).toHaveLength(2);
    expect(stackDirsOf(svc.dir, 'pool2')).toEqual(pooled.map((i) => i.identity).sort());

    // The claim is fast because it runs no `up`: the only `up` after it is the refill's, of a
    // new identity (how fast it is lives in bench/pool.bench.ts).
    const ups = vi.spyOn(svc.app.get(IacEngine), 'up');
    const claimed = await api.createInstance('gRPC', 'pool2', 'p1');
    const claimedIdentity = identityOfOutputsOnly(claimed);
    expect(pooled.map((i) => i.identity)).toContain(claimedIdentity);

    await drain();
    const after = await recordsOf(svc.dir, 'pool2');
    expect(after.filter((i) => i.sourceId === undefined)).toHaveLength(2);
    expect(after.filter((i) => i.sourceId === 'p1').map((i) => i.identity)).toEqual([
      identityOfOutputsOnly(claimed),
    ]);
    expect(stackDirsOf(svc.dir, 'pool2')).toHaveLength(3);
    const upped = ups.mock.calls.map(([request]) => request.identity);
    ups.mockRestore();
    expect(upped).toHaveLength(1);
    expect(upped).not.toContain(claimedIdentity);
    expect(pooled.map((i) => i.identity)).not.toContain(upped[0]);
  });

  it('should serve N from the pool and N fresh, each identity once, when 2N sources create at once', async () => {
    const N = 3;
    await api.createChallenge({ id: 'pool3', scenario: outputsOnly, timeout: '600s', min: N });
    await drain();
    const pooled = new Set((await pooledOf(svc.dir, 'pool3')).map((i) => i.identity));
    expect(pooled.size).toBe(N);

    const infos = await Promise.all(
      Array.from({ length: 2 * N }, (_, k) =>
        api.createInstance(k % 2 === 0 ? 'REST' : 'gRPC', 'pool3', `src-${k}`),
      ),
    );
    const identities = infos.map(identityOfOutputsOnly);
    expect(identities).not.toContain('none');
    expect(new Set(identities).size).toBe(2 * N);
    expect(identities.filter((i) => pooled.has(i))).toHaveLength(N);

    await drain();
    const records = await recordsOf(svc.dir, 'pool3');
    expect(records.filter((i) => i.sourceId !== undefined)).toHaveLength(2 * N);
    expect(records.filter((i) => i.sourceId === undefined)).toHaveLength(N);
    expect(stackDirsOf(svc.dir, 'pool3')).toEqual(records.map((i) => i.identity).sort());
  });

  it('should resize the pool as the delta table says when min and max are updated', async () => {
    // pool2: 1 claimed (p1), 2 pooled. min 2→1: (1,0,1,2) → delete 1.
    await api.updateChallenge('pool2', { min: 1 });
    await drain();
    expect(await pooledOf(svc.dir, 'pool2')).toHaveLength(1);
    expect(stackDirsOf(svc.dir, 'pool2')).toHaveLength(2);

    // min 3, max 3 with 1 claimed: desired = min(3, 3 − 1) = 2 → create 1.
    await api.updateChallenge('pool2', { min: 3, max: 3 });
    await drain();
    expect(await pooledOf(svc.dir, 'pool2')).toHaveLength(2);

    // Claims fill up to max: no refill once the total reaches max.
    await api.createInstance('REST', 'pool2', 'p2');
    await drain();
    expect(await pooledOf(svc.dir, 'pool2')).toHaveLength(1);
    await api.createInstance('gRPC', 'pool2', 'p3');
    await drain();
    expect(await pooledOf(svc.dir, 'pool2')).toHaveLength(0);
    const records = await recordsOf(svc.dir, 'pool2');
    expect(records.map((i) => i.sourceId).sort()).toEqual(['p1', 'p2', 'p3']);
    expect(stackDirsOf(svc.dir, 'pool2')).toHaveLength(3);

    // Beyond max, creation is still allowed (fresh), and pre-provisions nothing.
    await api.createInstance('REST', 'pool2', 'p4');
    await drain();
    expect(await pooledOf(svc.dir, 'pool2')).toHaveLength(0);
    expect(await recordsOf(svc.dir, 'pool2')).toHaveLength(4);
  });

  it('should delete only expired instances when upstream’s external janitor runs one pass over gRPC', async () => {
    await Promise.all([
      api.createChallenge({ id: 'ext-short', scenario: outputsOnly, timeout: '2s' }),
      api.createChallenge({ id: 'ext-long', scenario: outputsOnly, timeout: '600s' }),
      api.createChallenge({ id: 'ext-none', scenario: outputsOnly }),
    ]);
    await api.createInstance('gRPC', 'ext-short', 'gone');
    await api.createInstance('gRPC', 'ext-long', 'kept');
    await api.createInstance('gRPC', 'ext-none', 'kept');
    const [short] = await recordsOf(svc.dir, 'ext-short');
    const shortUntil = short?.until?.getTime() ?? NaN;
    await vi.waitFor(
      () => {
        if (!(Date.now() > shortUntil)) throw new Error(`ext-short/gone not expired yet`);
      },
      { timeout: 30_000, interval: 100 },
    );
    // The service's own janitor is off: the expired instance is still there.
    expect(await api.retrieveInstanceStatus('ext-short', 'gone')).toBe(200);

    // Two concurrent passes, as with overlapping ticks: one of them meets NotFound.
    const passes = await Promise.all([
      externalJanitorPass(svc.address),
      externalJanitorPass(svc.address),
    ]);
    expect(passes.flatMap((p) => p.errors)).toEqual([]);
    expect(passes.reduce((n, p) => n + p.deleted, 0)).toBeGreaterThanOrEqual(1);
    expect(await api.retrieveInstanceStatus('ext-short', 'gone')).toBe(404);
    expect(await api.retrieveInstanceStatus('ext-long', 'kept')).toBe(200);
    expect(await api.retrieveInstanceStatus('ext-none', 'kept')).toBe(200);
    expect(stackDirsOf(svc.dir, 'ext-short')).toEqual([]);
    // Pooled instances are never the external janitor's business (not streamed).
    expect(await pooledOf(svc.dir, 'pool3')).toHaveLength(3);
  });
});

/**
 * One pass of upstream's `chall-manager-janitor`: QueryChallenge; skip challenges
 * with neither timeout nor until; DeleteInstance (concurrently per challenge) of every instance
 * with now > until (no until = epoch, upstream's quirk); NotFound and Internal ignored.
 */
async function externalJanitorPass(
  address: string,
): Promise<{ deleted: number; errors: string[] }> {
  const grpc = connectApiClients(address);
  const result = { deleted: 0, errors: [] as string[] };
  try {
    const del = grpc.unary(grpc.instance, 'DeleteInstance');
    for (const c of await grpc.stream(grpc.challenge, 'QueryChallenge')({})) {
      if ((c.timeout ?? null) === null && (c.until ?? null) === null) continue;
      const now = Date.now();
      await Promise.all(
        (c.instances as Record<string, unknown>[]).map(async (i) => {
          const until = i.until === null || i.until === undefined ? 0 : timestampMs(i.until);
          if (!(now > until)) return;
          await del({ challengeId: c.id, sourceId: i.sourceId }).then(
            () => result.deleted++,
            (err: { code?: number; message?: string }) => {
              if (err.code !== 5 && err.code !== 13) result.errors.push(String(err.message));
            },
          );
        }),
      );
    }
  } finally {
    grpc.close();
  }
  return result;
}

describe('janitor (JANITOR_TICKER=1s)', () => {
  let svc: ApiApp;
  let api: Api;

  beforeAll(async () => {
    svc = await bootApiApp({ JANITOR_TICKER: '1s' });
    api = new Api(svc.base, svc.grpc);
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('should delete the instance and stop its service when its timeout passes', async () => {
    await api.createChallenge({ id: 'short', scenario: flagServer, timeout: '2s' });
    const info = await api.createInstance('REST', 'short', 'player');
    expect(await readBanner(info)).toMatch(/^CTF\{[0-9a-f]{24}\}$/);
    await eventually('the expired instance is deleted', 60_000, async () => {
      return (await api.retrieveInstanceStatus('short', 'player')) === 404;
    });
    expect(await tcpClosed(info)).toBe(true);
    expect(await recordsOf(svc.dir, 'short')).toEqual([]);
    expect(stackDirsOf(svc.dir, 'short')).toEqual([]);
  });

  it('should drain the pool when the challenge until passes', async () => {
    await api.createChallenge({
      id: 'ending',
      scenario: outputsOnly,
      until: new Date(Date.now() + 600_000).toISOString(),
      min: 1,
    });
    await svc.app.get(BackgroundTasks).drain();
    expect(await pooledOf(svc.dir, 'ending')).toHaveLength(1);
    expect(checkpointsOf(svc.dir, 'outputs-only')).toHaveLength(1);

    await api.updateChallenge('ending', { until: new Date(Date.now() + 3_000).toISOString() });
    await eventually('the pool is drained', 60_000, async () => {
      return (
        (await recordsOf(svc.dir, 'ending')).length === 0 &&
        stackDirsOf(svc.dir, 'ending').length === 0 &&
        checkpointsOf(svc.dir, 'outputs-only').length === 0
      );
    });
    // And nothing spins it up again: two more janitor sweeps and what they started.
    const sweeps = vi.spyOn(svc.app.get(JanitorService), 'sweep');
    await vi.waitFor(
      () => {
        if (sweeps.mock.settledResults.length < 2) throw new Error('fewer than 2 sweeps yet');
      },
      { timeout: 30_000, interval: 100 },
    );
    sweeps.mockRestore();
    await svc.app.get(BackgroundTasks).drain();
    expect(await recordsOf(svc.dir, 'ending')).toEqual([]);
  });
});

/** Whether process `pid` still runs (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('crash during a spin-up (node dist/main.js, kill -9)', () => {
  let service: Replica | undefined;
  let crashDir: string | undefined;

  beforeAll(async () => {
    await buildServiceIfStale();
  });
  afterAll(async () => {
    await service?.stop();
    // The crashed replica's Pulumi language host: it looks for its engine only every five
    // minutes (Pulumi's own health check), so it outlives the crash that much.
    if (crashDir) killProcessesWithEnv('DIR', crashDir);
  });

  it('should leave no orphan stack and refill the pool when the service restarts', async () => {
    const root = mkdtempSync(join(scratch, 'crash-'));
    const dir = join(root, 'data');
    crashDir = dir;
    const cache = join(root, 'cache');
    const markers = join(root, 'markers');
    scenarioOf(root, 'markers', { '.keep': '' });
    const slowUp = await orasPush(
      registry,
      'pool-janitor/slow-up:v1',
      scenarioOf(root, 'slow-up', slowUpScenario(markers)),
    );
    const env = { JANITOR_TICKER: '1h' };
    service = await startReplica({ name: 'service', dir, cache, env });
    const res = await fetch(
      `${service.base}/api/v1/challenge`,
      jsonInit('POST', { id: 'crashy', scenario: slowUp, timeout: '600s', min: 1 }),
    );
    expect(res.status, await res.text()).toBe(200);
    await eventually('the spin-up is in its up', 60_000, () =>
      Promise.resolve(readdirSync(markers).some((f) => f.startsWith('started-'))),
    );
    await service.crash();
    const started = readdirSync(markers).filter((f) => f.startsWith('started-'));
    expect(started).toHaveLength(1);
    const crashed = started[0]!.slice('started-'.length);
    // The dynamic provider running the create is in a process group of its own, so the kill
    // missed it: it must stop by itself now that its engine is gone, not serve on forever.
    const provider = Number(readFileSync(join(markers, started[0]!), 'utf8'));
    await eventually('the dynamic provider of the killed `up` exits', 30_000, () =>
      Promise.resolve(!alive(provider)),
    );
    expect(await recordsOf(dir, 'crashy')).toEqual([]);
    expect(stackDirsOf(dir, 'crashy')).toEqual([crashed]);

    service = await startReplica({ name: 'service', dir, cache, env });
    const output = (): string => service?.output() ?? '';
    await eventually(
      'the boot sweep destroys the orphan stack',
      120_000,
      () => Promise.resolve(!stackDirsOf(dir, 'crashy').includes(crashed)),
      output,
    );
    await eventually(
      'the pool is refilled to 1',
      120_000,
      async () => (await pooledOf(dir, 'crashy')).length === 1,
      output,
    );
    const records = await recordsOf(dir, 'crashy');
    expect(stackDirsOf(dir, 'crashy')).toEqual(records.map((i) => i.identity).sort());
    expect(checkpointsOf(dir, 'slow-up')).toHaveLength(1);

    const claim = await fetch(
      `${service.base}/api/v1/instance`,
      jsonInit('POST', { challengeId: 'crashy', sourceId: 'after-crash' }),
    );
    const body = (await claim.json()) as { connectionInfo: string; flags: string[] };
    expect(claim.status).toBe(200);
    expect(body.connectionInfo).toBe(`http://${records[0]!.identity}.ctf.invalid`);
    expect(body.flags).toEqual([`PLUGIN{${records[0]!.identity}-0}`]);
  });
});

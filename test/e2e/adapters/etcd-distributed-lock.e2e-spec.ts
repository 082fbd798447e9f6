import { Etcd3 } from 'etcd3';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  EtcdDistributedLock,
  LockUnavailableError,
  type EtcdDistributedLockOptions,
} from '../../../src/adapters/lock/etcd-distributed-lock.adapter';
import { lockKeys, type LockKey } from '../../../src/shared/domain/lock-keys';
import { distributedLockContract } from '../../contract/distributed-lock.contract';
import { deferred, waitUntil } from '../../contract/helpers';
import {
  freePort,
  startEtcd,
  startEtcdCluster,
  type EtcdCluster,
  type RestartableEtcd,
} from '../../support/services';

const endpoint = inject('etcdEndpoint');
// One prefix per run, so that a shared etcd (CM_TEST_ETCD_ENDPOINT) holds no leftovers of others.
const prefix = `/cm-e2e/${randomUUID()}`;

const opened: EtcdDistributedLock[] = [];
/** A replica's lock; every one made is shut down after its test. */
function replica(options: Partial<EtcdDistributedLockOptions> = {}): EtcdDistributedLock {
  const lock = new EtcdDistributedLock({ endpoints: [endpoint], prefix, ...options });
  opened.push(lock);
  return lock;
}
async function shutdownReplicas(): Promise<void> {
  await Promise.all(opened.splice(0).map((l) => l.onApplicationShutdown()));
}

/** {@link waitUntil} for conditions that ask etcd. */
async function untilAsync(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const freshKey = (): LockKey => lockKeys.challenge(`etcd-${randomUUID()}`);

distributedLockContract(
  'EtcdDistributedLock',
  () => {
    const lock = new EtcdDistributedLock({ endpoints: [endpoint], prefix });
    return Promise.resolve({ lock, cleanup: () => lock.onApplicationShutdown() });
  },
  { quietMs: 200 },
);

describe('EtcdDistributedLock', () => {
  let raw: Etcd3;
  beforeAll(() => {
    raw = new Etcd3({ hosts: endpoint });
  });
  afterAll(() => {
    raw.close();
  });
  afterEach(shutdownReplicas);

  /** Names of the entries of `key`, as stored in etcd. */
  const entriesOf = async (key: LockKey): Promise<string[]> =>
    (await raw.getAll().prefix(`${prefix}/${key}/`).keys()).map((k) =>
      k.slice(`${prefix}/${key}/`.length),
    );

  describe('withWriteLock', () => {
    it('should exclude each other when two replicas write-lock the same key', async () => {
      const [a, b] = [replica(), replica()];
      const key = freshKey();
      const gate = deferred();
      let bStarted = false;
      const first = a.withWriteLock(key, () => gate.promise);
      await untilAsync(async () => (await entriesOf(key)).length === 1, 'for A to enqueue');
      const second = b.withWriteLock(key, () => {
        bStarted = true;
        return Promise.resolve();
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(bStarted).toBe(false);
      gate.resolve();
      await Promise.all([first, second]);
      expect(bStarted).toBe(true);
      expect(await entriesOf(key)).toEqual([]);
    });

    it('should count exactly 200 when 8 replicas do 25 locked increments each', async () => {
      const key = freshKey();
      const counter = `${prefix}/counters/${randomUUID()}`;
      await raw.put(counter).value('0');
      const started = Date.now();
      await Promise.all(
        Array.from({ length: 8 }, () => replica()).map(async (lock) => {
          for (let round = 0; round < 25; round++) {
            await lock.withWriteLock(key, async () => {
              const value = Number(await raw.get(counter).string());
              await raw.put(counter).value(String(value + 1));
            });
          }
        }),
      );
      console.log(`[etcd lock] 8 x 25 locked increments in ${Date.now() - started} ms`);
      expect(await raw.get(counter).string()).toBe('200');
      expect(await entriesOf(key)).toEqual([]);
    });

    it("should free the lock for the next waiter when the holder's lease is revoked", async () => {
      const [a, b] = [replica({ ttlSeconds: 2 }), replica()];
      const key = freshKey();
      const gate = deferred();
      const aState = { started: false, finished: false };
      const holding = a.withWriteLock(key, async () => {
        aState.started = true;
        await gate.promise;
        aState.finished = true;
      });
      await waitUntil(() => aState.started, 'for replica A to hold the key');
      let bStarted = false;
      const waiting = b.withWriteLock(key, () => {
        bStarted = true;
        return Promise.resolve();
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(bStarted).toBe(false);

      // Replica A's lease is revoked behind its back (an operator, or etcd after a partition).
      const entries = (await raw.getAll().prefix(`${prefix}/${key}/write-`).exec()).kvs;
      expect(entries).toHaveLength(2);
      const held = entries.reduce((x, y) =>
        BigInt(x.create_revision) < BigInt(y.create_revision) ? x : y,
      );
      const revokedAt = Date.now();
      await raw.leaseClient.leaseRevoke({ ID: held.lease });
      await waiting;
      expect(Date.now() - revokedAt).toBeLessThan(2_000);

      // A's running work is not interrupted (documented limitation), and A locks again under a
      // new lease.
      expect(aState.finished).toBe(false);
      gate.resolve();
      await holding;
      await expect(a.withWriteLock(key, () => Promise.resolve('again'))).resolves.toBe('again');
    });

    it('should free the lock within the TTL when the holding replica dies', async () => {
      const key = freshKey();
      // A replica that enqueued a write entry on a 2 s lease, then died: no revoke, no keepalive.
      const dead = new Etcd3({ hosts: endpoint });
      const lease = dead.lease(2, { autoKeepAlive: false });
      await lease.put(`${prefix}/${key}/write-${randomUUID()}`).value('dead-replica');
      lease.release();
      dead.close();
      const diedAt = Date.now();

      const survivor = replica();
      await expect(survivor.withWriteLock(key, () => Promise.resolve('mine'))).resolves.toBe(
        'mine',
      );
      const waited = Date.now() - diedAt;
      console.log(`[etcd lock] a dead holder's 2 s lease freed the key after ${waited} ms`);
      expect(waited).toBeGreaterThan(1_000);
      expect(waited).toBeLessThan(4_000);
    });

    it('should leave no entry under the prefix when a waiter is aborted', async () => {
      const [a, b] = [replica(), replica()];
      const key = freshKey();
      const gate = deferred();
      let held = false;
      const holding = a.withWriteLock(key, async () => {
        held = true;
        await gate.promise;
      });
      await waitUntil(() => held, 'for the holder');
      const controller = new AbortController();
      const waiters = [
        b.withWriteLock(key, () => Promise.resolve(), controller.signal),
        b.withReadLock(key, () => Promise.resolve(), controller.signal),
      ];
      await untilAsync(
        async () => (await entriesOf(key)).length === 3,
        'for both waiters to enqueue',
      );

      const reason = new Error('client went away');
      controller.abort(reason);
      await Promise.all(waiters.map((waiter) => expect(waiter).rejects.toBe(reason)));
      const left = await entriesOf(key);
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(/^write-/);

      gate.resolve();
      await holding;
      expect(await entriesOf(key)).toEqual([]);
    });

    it('should treat parent and nested keys as distinct locks when both are write-locked', async () => {
      const lock = replica();
      const challenge = `etcd-${randomUUID()}`;
      const parent = lockKeys.challenge(challenge);
      const child = lockKeys.source(challenge, 'source-1');
      // The child's entries live below the parent's directory; they must not queue the parent.
      const gate = deferred();
      let childHeld = false;
      const holdingChild = lock.withWriteLock(child, async () => {
        childHeld = true;
        await gate.promise;
      });
      await waitUntil(() => childHeld, 'for the child key');
      await expect(lock.withWriteLock(parent, () => Promise.resolve('parent'))).resolves.toBe(
        'parent',
      );
      gate.resolve();
      await holdingChild;
      // And the hierarchy the services use (parent held around the child) works.
      await expect(
        lock.withWriteLock(parent, () => lock.withWriteLock(child, () => Promise.resolve('both'))),
      ).resolves.toBe('both');
    });
  });

  describe('failures', () => {
    it('should reject with LockUnavailableError within the deadline when etcd is unreachable', async () => {
      const lock = replica({ endpoints: [`127.0.0.1:${await freePort()}`], callTimeoutMs: 1_000 });
      const started = Date.now();
      const work = (): Promise<void> => Promise.resolve();
      await expect(lock.withWriteLock(freshKey(), work)).rejects.toBeInstanceOf(
        LockUnavailableError,
      );
      await expect(lock.withReadLock(freshKey(), work)).rejects.toThrow(/etcd unreachable/);
      expect(Date.now() - started).toBeLessThan(3_000);
    });

    it('should reject with LockUnavailableError when used after shutdown', async () => {
      const lock = replica();
      await lock.withWriteLock(freshKey(), () => Promise.resolve());
      await lock.onApplicationShutdown();
      await expect(lock.withWriteLock(freshKey(), () => Promise.resolve())).rejects.toBeInstanceOf(
        LockUnavailableError,
      );
    });

    it("should free the replica's entries when it shuts down while holding", async () => {
      const [a, b] = [replica(), replica()];
      const key = freshKey();
      let held = false;
      const holding = a.withWriteLock(key, async () => {
        held = true;
        await new Promise(() => undefined);
      });
      holding.catch(() => undefined);
      await waitUntil(() => held, 'for the holder');
      await a.onApplicationShutdown();
      await expect(b.withWriteLock(key, () => Promise.resolve('free'))).resolves.toBe('free');
    });
  });

  describe('check', () => {
    it('should pass when etcd answers', async () => {
      await expect(replica().check()).resolves.toBeUndefined();
      await expect(replica().healthy()).resolves.toBe(true);
    });

    it('should fail within about a second when etcd is unreachable', async () => {
      const lock = replica({ endpoints: [`http://127.0.0.1:${await freePort()}`] });
      const started = Date.now();
      await expect(lock.check()).rejects.toBeInstanceOf(LockUnavailableError);
      await expect(lock.healthy()).resolves.toBe(false);
      expect(Date.now() - started).toBeLessThan(2_500);
    });
  });
});

describe('EtcdDistributedLock on a 3-member cluster', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    cluster = await startEtcdCluster();
    raw = new Etcd3({ hosts: cluster.endpoints });
  }, 60_000);
  afterAll(async () => {
    raw?.close();
    await cluster?.stop();
  });
  afterEach(shutdownReplicas);

  it('should keep granting locks after a short stall when the leader is killed', async () => {
    const lock = replica({ endpoints: cluster.endpoints });
    const key = freshKey();
    await lock.withWriteLock(key, () => Promise.resolve());
    const timing = { done: 0, last: Date.now(), maxGap: 0, failures: 0 };
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          await lock.withWriteLock(key, () => sleep(5));
          timing.done += 1;
        } catch {
          timing.failures += 1;
        }
        const now = Date.now();
        timing.maxGap = Math.max(timing.maxGap, now - timing.last);
        timing.last = now;
      }
    })();
    await sleep(300);
    const leader = await cluster.leader();
    await leader.kill();
    const before = timing.done;
    await waitUntil(() => timing.done >= before + 20, 'for 20 locks after the leader died', 20_000);
    running = false;
    await loop;
    console.log(
      `[etcd lock] leader ${leader.name} killed: longest gap ${timing.maxGap} ms, ` +
        `${timing.failures} failed acquisition(s)`,
    );
    expect(timing.failures).toBe(0);
    // Bounded by the 5 s call budget; a third of it per try is the usual stall.
    expect(timing.maxGap).toBeLessThan(5_000);
    leader.restart();
    await cluster.waitHealthy();
  });

  it('should fail with LockUnavailableError within the deadline when quorum is lost, then recover', async () => {
    const callTimeoutMs = 2_000;
    const lock = replica({ endpoints: cluster.endpoints, callTimeoutMs });
    const key = freshKey();
    await lock.withWriteLock(key, () => Promise.resolve());
    const [x, y] = cluster.members;
    await Promise.all([x!.kill(), y!.kill()]);

    const started = Date.now();
    await expect(lock.withWriteLock(key, () => Promise.resolve())).rejects.toBeInstanceOf(
      LockUnavailableError,
    );
    const failedAfter = Date.now() - started;
    await expect(lock.healthy()).resolves.toBe(false);
    console.log(`[etcd lock] without quorum an acquisition failed after ${failedAfter} ms`);
    expect(failedAfter).toBeLessThan(callTimeoutMs + 1_000);

    x!.restart();
    y!.restart();
    await cluster.waitHealthy();
    const recovering = Date.now();
    let result: string | undefined;
    while (result === undefined && Date.now() - recovering < 20_000) {
      result = await lock.withWriteLock(key, () => Promise.resolve('back')).catch(() => undefined);
      if (result === undefined) await sleep(200);
    }
    console.log(`[etcd lock] quorum back: locks granted again after ${Date.now() - recovering} ms`);
    expect(result).toBe('back');
    // The entry of the failed acquisition does not linger and hold up the key.
    await untilAsync(
      async () => (await raw.getAll().prefix(`${prefix}/${key}/`).keys()).length === 0,
      'for the failed entry to be cleaned up',
      15_000,
    );
  });
});

describe.each([
  { auth: false, title: 'without authentication' },
  { auth: true, title: 'with authentication' },
])('EtcdDistributedLock across an etcd outage longer than the lease TTL, $title', ({ auth }) => {
  const PASSWORD = 'cm-e2e-root';
  /** Defaults of EtcdDistributedLock: a 10 s lease, a 5 s budget per etcd call. */
  const TTL_S = 10;
  const CALL_BUDGET_MS = 5_000;
  /** Longer than the lease TTL, so the lease is lost client-side (and the auth token with etcd). */
  const OUTAGE_MS = TTL_S * 1_000 + 5_000;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  let etcd: RestartableEtcd;

  beforeAll(async () => {
    // etcd forgets a simple token after --auth-token-ttl without use (300 s by default; on
    // restart too, from 3.5): a 2 s one makes this outage cost the client its token, as a longer
    // one does in production. The first call through the client's reopened circuit then meets
    // "invalid auth token".
    etcd = await startEtcd(auth ? ['--auth-token-ttl=2'] : []);
    if (auth) {
      const etcdctl = (...args: string[]): void => {
        execFileSync('etcdctl', [`--endpoints=${etcd.endpoint}`, ...args], {
          env: { ...process.env, ETCDCTL_API: '3' },
          stdio: 'pipe',
        });
      };
      etcdctl('user', 'add', `root:${PASSWORD}`, '--interactive=false');
      etcdctl('user', 'grant-role', 'root', 'root');
      etcdctl('auth', 'enable');
    }
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
  });
  afterEach(shutdownReplicas);

  /** What one call did: settled in `ms`, or was still pending when the probe gave up on it. */
  type Outcome = { ok: boolean; ms: number; hung: boolean };
  /** Runs `call`, giving up on it (as hung) after `limitMs`. */
  async function timed(call: () => Promise<unknown>, limitMs: number): Promise<Outcome> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), limitMs)));
    const settled = call().then(
      () => true,
      () => false,
    );
    const result = await Promise.race([settled, hung]);
    clearTimeout(timer);
    return { ok: result === true, ms: Date.now() - started, hung: result === 'hung' };
  }

  it('should fail every call within its deadline while etcd is away, then lock again within seconds once it is back', async () => {
    const lock = replica({
      endpoints: [etcd.endpoint],
      ...(auth ? { username: 'root', password: PASSWORD } : {}),
    });
    const key = freshKey();
    // Twice the budget: anything slower has no deadline at all.
    const limit = 2 * CALL_BUDGET_MS + 1_000;
    const health = (): Promise<Outcome> =>
      timed(async () => {
        if (!(await lock.healthy())) throw new Error('unhealthy');
      }, limit);
    const acquire = (): Promise<Outcome> =>
      timed(() => lock.withWriteLock(key, () => Promise.resolve()), limit);
    expect(await Promise.all([health(), acquire()])).toMatchObject([{ ok: true }, { ok: true }]);

    // What a replica sees during a live event: health checks and acquisitions, each on its own
    // cadence, while etcd goes away and comes back.
    const log: { what: 'health' | 'lock'; at: number; outcome: Outcome }[] = [];
    let running = true;
    const loop = async (what: 'health' | 'lock', call: () => Promise<Outcome>): Promise<void> => {
      while (running) {
        const at = Date.now();
        log.push({ what, at, outcome: await call() });
        await sleep(what === 'health' ? 1_000 : 700);
      }
    };
    const loops = Promise.all([loop('health', health), loop('lock', acquire)]);

    await etcd.kill();
    const away = Date.now();
    await sleep(OUTAGE_MS);
    // etcd answers before restart() has seen it healthy: a call may rightly succeed in between.
    const restarting = Date.now();
    await etcd.restart();
    const back = Date.now();
    const recovered = (what: 'health' | 'lock'): number | undefined =>
      log.find((l) => l.what === what && l.at >= back && l.outcome.ok)?.at;
    while (
      (recovered('health') === undefined || recovered('lock') === undefined) &&
      Date.now() - back < 30_000
    ) {
      await sleep(200);
    }
    running = false;
    await loops;

    const during = log.filter((l) => l.at > away && l.at + l.outcome.ms < restarting);
    const hung = log.filter((l) => l.outcome.hung);
    const recoveredMs =
      Math.max(recovered('health') ?? Infinity, recovered('lock') ?? Infinity) - back;
    console.log(
      `[etcd lock] ${auth ? 'with' : 'without'} auth, after a ${OUTAGE_MS} ms outage: ` +
        `${during.length} calls failed during it (slowest ${Math.max(...during.map((l) => l.outcome.ms))} ms), ` +
        `${hung.length} hung, health and locks back ${recoveredMs} ms after etcd`,
    );
    expect(hung, JSON.stringify(hung)).toEqual([]);
    for (const l of during) {
      expect(l.outcome.ok, JSON.stringify(l)).toBe(false);
      // A health check has 1 s; an acquisition fails within the budget of its first call (plus
      // 2 s of scheduling slack on a machine shared with other suites).
      expect(l.outcome.ms, JSON.stringify(l)).toBeLessThan(
        (l.what === 'health' ? 1_000 : CALL_BUDGET_MS) + 2_000,
      );
    }
    // The circuit breaker lets a call through 5 s after the last failure: seconds, not a restart.
    expect(recoveredMs).toBeLessThan(10_000);
  }, 90_000);
});

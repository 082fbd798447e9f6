import { Etcd3 } from 'etcd3';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
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

const freshKey = (): LockKey => lockKeys.challenge(`etcd-${randomUUID()}`);

distributedLockContract('EtcdDistributedLock', () => {
  const lock = new EtcdDistributedLock({ endpoints: [endpoint], prefix });
  const raw = new Etcd3({ hosts: endpoint });
  return Promise.resolve({
    lock,
    cleanup: async () => {
      await lock.onApplicationShutdown();
      raw.close();
    },
    // The key's queue entries: one per holder and waiter.
    entries: async (key) =>
      (await raw.getAll().prefix(`${prefix}/${key}/`).keys()).filter((k) =>
        /^(read|write)-[^/]+$/.test(k.slice(`${prefix}/${key}/`.length)),
      ).length,
  });
});

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
      await waitUntil(async () => (await entriesOf(key)).length === 1, 'for A to enqueue');
      const second = b.withWriteLock(key, () => {
        bStarted = true;
        return Promise.resolve();
      });
      // B's entry queued behind A's: B is waiting, not running.
      await waitUntil(async () => (await entriesOf(key)).length === 2, 'for B to enqueue');
      expect(bStarted).toBe(false);
      gate.resolve();
      await Promise.all([first, second]);
      expect(bStarted).toBe(true);
      // Released entries are deleted in the background, right after the work.
      await waitUntil(async () => (await entriesOf(key)).length === 0, 'for the releases');
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
      // Released entries are deleted in the background, right after the work.
      await waitUntil(async () => (await entriesOf(key)).length === 0, 'for the releases');
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
      await waitUntil(async () => (await entriesOf(key)).length === 2, 'for B to enqueue');
      expect(bStarted).toBe(false);

      // Replica A's lease is revoked behind its back (an operator, or etcd after a partition).
      const entries = (await raw.getAll().prefix(`${prefix}/${key}/write-`).exec()).kvs;
      expect(entries).toHaveLength(2);
      const held = entries.reduce((x, y) =>
        BigInt(x.create_revision) < BigInt(y.create_revision) ? x : y,
      );
      await raw.leaseClient.leaseRevoke({ ID: held.lease });
      await waiting;

      // B ran while A's work was still going: the revoke freed the key, not A's release. A's
      // running work is not interrupted (documented limitation), and A locks again under a new
      // lease.
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
      const deadEntry = `${prefix}/${key}/write-${randomUUID()}`;
      await lease.put(deadEntry).value('dead-replica');
      const deadLease = await lease.grant();
      lease.release();
      dead.close();
      // The entry is bound to a 2 s lease nobody keeps alive: etcd expires it within that TTL.
      const { TTL } = await raw.leaseClient.leaseTimeToLive({ ID: deadLease });
      expect(Number(TTL)).toBeGreaterThan(0);
      expect(Number(TTL)).toBeLessThanOrEqual(2);

      const survivor = replica();
      const deadEntryWhenRunning = survivor.withWriteLock(key, async () =>
        (await raw.get(deadEntry).string()) === null ? 'gone' : 'still there',
      );
      // The survivor waited for the dead holder's entry to expire instead of ignoring it.
      await expect(deadEntryWhenRunning).resolves.toBe('gone');
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
      await waitUntil(
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
      // Released entries are deleted in the background, right after the work.
      await waitUntil(async () => (await entriesOf(key)).length === 0, 'for the releases');
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
      let ran = false;
      const work = (): Promise<void> => {
        ran = true;
        return Promise.resolve();
      };
      // Settling at all is the point (a call without a deadline would hang the test): the
      // adapter gave up on its budget and said why.
      await expect(lock.withWriteLock(freshKey(), work)).rejects.toBeInstanceOf(
        LockUnavailableError,
      );
      await expect(lock.withReadLock(freshKey(), work)).rejects.toThrow(/etcd unreachable/);
      expect(ran).toBe(false);
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

    it('should fail with LockUnavailableError when etcd is unreachable', async () => {
      const lock = replica({ endpoints: [`http://127.0.0.1:${await freePort()}`] });
      await expect(lock.check()).rejects.toBeInstanceOf(LockUnavailableError);
      await expect(lock.healthy()).resolves.toBe(false);
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
    await waitUntil(() => timing.done >= 5, 'for the loop to be granted locks', 20_000);
    const leader = await cluster.leader();
    await leader.kill();
    const before = timing.done;
    await waitUntil(() => timing.done >= before + 20, 'for 20 locks after the leader died', 60_000);
    running = false;
    await loop;
    console.log(
      `[etcd lock] leader ${leader.name} killed: longest gap ${timing.maxGap} ms, ` +
        `${timing.failures} failed acquisition(s)`,
    );
    // An acquisition that outlives the call budget fails with LockUnavailableError: none failed,
    // so the stall stayed within the budget.
    expect(timing.failures).toBe(0);
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

    let ran = false;
    await expect(
      lock.withWriteLock(key, () => {
        ran = true;
        return Promise.resolve();
      }),
    ).rejects.toThrow(LockUnavailableError);
    expect(ran).toBe(false);
    await expect(lock.healthy()).resolves.toBe(false);

    x!.restart();
    y!.restart();
    await cluster.waitHealthy();
    // Granted again once the quorum is back (the client retries an endpoint some seconds after
    // its last failure).
    const result = await vi.waitFor(() => lock.withWriteLock(key, () => Promise.resolve('back')), {
      timeout: 30_000,
      interval: 200,
    });
    expect(result).toBe('back');
    // The entry of the failed acquisition does not linger and hold up the key.
    await waitUntil(
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
  /** Default lease TTL of EtcdDistributedLock. */
  const TTL_S = 10;
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

  /** What one call did while etcd went away and came back. */
  type Outcome = { ok: boolean; error?: unknown; ms: number };
  async function outcomeOf(call: () => Promise<unknown>): Promise<Outcome> {
    const started = Date.now();
    try {
      await call();
      return { ok: true, ms: Date.now() - started };
    } catch (error) {
      return { ok: false, error, ms: Date.now() - started };
    }
  }

  it('should fail every call with LockUnavailableError while etcd is away, then lock again once it is back', async () => {
    const lock = replica({
      endpoints: [etcd.endpoint],
      ...(auth ? { username: 'root', password: PASSWORD } : {}),
    });
    const key = freshKey();
    const health = (): Promise<Outcome> => outcomeOf(() => lock.check());
    const acquire = (): Promise<Outcome> =>
      outcomeOf(() => lock.withWriteLock(key, () => Promise.resolve()));
    expect(await Promise.all([health(), acquire()])).toMatchObject([{ ok: true }, { ok: true }]);

    // What a replica sees during a live event: health checks and acquisitions, each on its own
    // cadence, while etcd goes away and comes back. Every call settles: one without a deadline
    // would keep its loop (and this test) from finishing.
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
    // The outage itself, not a wait for something: longer than the lease TTL, so that the lease
    // is lost client-side (and the auth token with etcd) while the replica keeps calling.
    await sleep(OUTAGE_MS);
    // etcd answers before restart() has seen it healthy: a call may rightly succeed in between.
    const restarting = Date.now();
    await etcd.restart();
    const back = Date.now();
    const recovered = (what: 'health' | 'lock'): boolean =>
      log.some((l) => l.what === what && l.at >= back && l.outcome.ok);
    await waitUntil(
      () => recovered('health') && recovered('lock'),
      'for a health check and a lock to succeed once etcd is back',
      60_000,
    );
    running = false;
    await loops;

    const during = log.filter((l) => l.at > away && l.at + l.outcome.ms < restarting);
    console.log(
      `[etcd lock] ${auth ? 'with' : 'without'} auth, after a ${OUTAGE_MS} ms outage: ` +
        `${during.length} calls failed during it (slowest ${Math.max(...during.map((l) => l.outcome.ms))} ms)`,
    );
    // Both kinds of call were made, and settled, while etcd was away; each one failed as
    // unavailable (the error services turn into UNAVAILABLE), none hung on a dead connection.
    expect(new Set(during.map((l) => l.what))).toEqual(new Set(['health', 'lock']));
    for (const l of during) {
      expect(l.outcome.ok, JSON.stringify(l)).toBe(false);
      expect(l.outcome.error, String(l.outcome.error)).toBeInstanceOf(LockUnavailableError);
    }
  }, 90_000);
});

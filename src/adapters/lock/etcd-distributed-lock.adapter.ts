import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { CallOptions } from '@grpc/grpc-js';
import { noop } from 'cockatiel';
import {
  Etcd3,
  EtcdLeaseInvalidError,
  GRPCDeadlineExceededError,
  isRecoverableError,
  type IOperation,
  type ITxnResponse,
  type Lease,
} from 'etcd3';
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { ServiceUnavailableError } from '../../shared/errors/availability.errors';
import type { LockKey } from '../../shared/domain/lock-keys';
import { DistributedLock } from '../../shared/ports/distributed-lock.port';
import { HealthIndicator } from '../../shared/ports/health-indicator.port';

/** How {@link EtcdDistributedLock} reaches etcd and names its keys. */
export interface EtcdDistributedLockOptions {
  /** `host:port` or `http://host:port`, one per member. */
  endpoints: string[];
  username?: string;
  password?: string;
  /** Root of every lock key; default `/chall-manager/locks`. */
  prefix?: string;
  /** TTL of the replica's lease: how long a dead replica's locks outlive it. Default 10. */
  ttlSeconds?: number;
  /** Budget of every etcd operation, retries included (each try gets a third). Default 5000. */
  callTimeoutMs?: number;
}

/**
 * etcd could not be reached or could not answer in time (no quorum, member down, lease lost).
 * Lock callers get this instead of an etcd3 error, so that the transport can map it to
 * UNAVAILABLE without knowing the client library.
 */
export class LockUnavailableError extends ServiceUnavailableError {
  constructor(
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    // The detail (etcd's own words) goes to the logs through `cause`, not to clients.
    super('etcd', { cause: options?.cause ?? new Error(detail) });
  }
}

type Mode = 'read' | 'write';

/** The process's lease and what depends on it. */
interface LeaseSession {
  readonly lease: Lease;
  /** Lease ID once granted; rejects when the grant failed. */
  readonly id: Promise<string>;
  /** Aborted (with a LockUnavailableError) once the lease is lost or revoked. */
  readonly lost: AbortController;
  /** Critical sections running under this lease, to say what a loss breaks. */
  holders: number;
}

/** A key of ours that must go, and until when to keep deleting it. */
interface Orphan {
  readonly session: LeaseSession;
  /** Next attempt, epoch ms. */
  due: number;
  /** A delete before this time does not settle it: a timed-out put may still land. */
  readonly confirmAfter: number;
}

/** Where an acquisition got to: what its entry is bound to, and whether the put answered. */
interface Enqueued {
  session?: LeaseSession;
  answered?: boolean;
}

/** Name of one queue entry below `<prefix>/<lockKey>/`; anything else there is a nested lock's. */
const ENTRY = /^(read|write)-[0-9a-f-]{36}$/;

/** The entries under a lock's prefix, and the revision they were read at. */
interface QueueSnapshot {
  kvs: readonly { key: Buffer; create_revision: string }[];
  revision: bigint;
}

/**
 * The entry `entry` must outlive, or undefined when the lock is ours: the latest entry queued
 * before ours that conflicts with our mode. Our own place is read back from etcd rather than
 * taken from the put's answer: a put retried by etcd3 after a timeout answers with a later
 * revision than the one that created the key.
 */
function nearestBlocker(
  snapshot: QueueSnapshot,
  dir: string,
  entry: string,
  mode: Mode,
): { key: string; seenAt: bigint } | undefined {
  const queue: { key: string; kind: string; created: bigint }[] = [];
  let ours: bigint | undefined;
  for (const kv of snapshot.kvs) {
    const key = kv.key.toString();
    const created = BigInt(kv.create_revision);
    if (key === entry) ours = created;
    const kind = ENTRY.exec(key.slice(dir.length))?.[1];
    // Anything else below `dir` belongs to a nested lock (`chall/x` vs `chall/x/src/y`).
    if (kind !== undefined && key !== entry) queue.push({ key, kind, created });
  }
  if (ours === undefined) {
    throw new LockUnavailableError(
      'the etcd lease expired while waiting, and the place in the queue with it',
    );
  }
  let nearest: (typeof queue)[number] | undefined;
  for (const other of queue) {
    if (other.created >= ours || (mode === 'read' && other.kind !== 'write')) continue;
    if (nearest === undefined || other.created > nearest.created) nearest = other;
  }
  return nearest && { key: nearest.key, seenAt: snapshot.revision };
}

/** The entries every range of a lock transaction's answer found, and its revision. */
function snapshotOf(res: ITxnResponse): QueueSnapshot {
  const kvs = res.responses.flatMap((r) => r.response_range?.kvs ?? []);
  if (!res.responses.some((r) => r.response_range)) {
    throw new Error('etcd answered the lock transaction without its range');
  }
  return { kvs, revision: BigInt(res.header.revision) };
}

/** Per-call budget of the health check, as upstream's `etcd` check (1 s). */
const HEALTH_DEADLINE_MS = 1_000;
/** How long past a try's deadline gRPC gets to report it before the try is abandoned. */
const DEADLINE_GRACE_MS = 250;

/**
 * Readers-writer lock shared by all replicas through etcd.
 *
 * ## Recipe
 * ZooKeeper's "Shared Locks" recipe (ZooKeeper Recipes and Solutions,
 * https://zookeeper.apache.org/doc/current/recipes.html#Shared+Locks), with etcd's create
 * revision in place of the sequential znode number and a lease in place of the ephemeral flag:
 *
 * 1. Enqueue: put `<prefix>/<lockKey>/{read|write}-<uuid>` bound to the replica's lease. Its
 *    create revision, assigned by etcd, is its place in a single total order.
 * 2. Read the entries of `<lockKey>`. A writer is blocked by every earlier entry; a reader only
 *    by earlier `write-` entries.
 * 3. Nothing blocks: the lock is held. Otherwise watch the deletion of the nearest blocking
 *    entry (highest earlier create revision), from the revision of the read so that a deletion
 *    in between is not missed; on deletion go back to 2. (Each waiter watches one key, so a
 *    release wakes only the waiters it was blocking, not the herd.)
 * 4. Release, abort, or failure: delete the entry. A dead replica's entries go when its lease
 *    expires.
 *
 * ## Why it is correct
 * - Mutual exclusion: take conflicting holders A and B with A created first. An entry exists
 *   from its put until its holder releases, so A's existed when B last read the queue (after
 *   B's own put, which follows A's, and before A's release; etcd reads are linearizable). B must then have found A
 *   blocking: B is a writer (any earlier entry blocks), or A is (earlier writers block readers).
 * - Readers share: readers are never blocked by readers.
 * - Writer preference and no starvation: a reader arriving after a waiting writer has a later
 *   revision than it, so it queues behind it. Every entry waits only on earlier entries, each of
 *   which is deleted in finite time (its work settles, its waiter gives up, or its lease
 *   expires), so by induction on revision every waiter is served, in arrival order (FIFO).
 * - Cancellation: an aborted or failed waiter deletes its entry; the one waiting on it wakes and
 *   re-reads, which is also how readers behind an aborted writer get in.
 *
 * ## Leases, deadlines, failures
 * - One lease per process, granted on first use and kept alive by etcd3. When it is lost
 *   (keepalive failed past its TTL, or revoked), the loss is logged, waiters under it fail, and
 *   the next acquisition grants a new one. Limitation: work already running under the lost
 *   lease is not interrupted, although its lock was freed; the log says how many were.
 * - Every etcd operation has a budget ({@link EtcdDistributedLockOptions.callTimeoutMs}), tried
 *   again on transient errors within it, each try with a third of it: a lost member or leader
 *   costs a stall of about a third of the budget, and a lost quorum fails with
 *   {@link LockUnavailableError} within the budget.
 * - An entry that could not be deleted (etcd unreachable at that moment) is retried in the
 *   background until deleted or until its lease is gone, as it would otherwise hold up the key.
 *
 * Keys are not compatible with upstream's five-mutex etcd lock (pkg/lock/etcd.go): replicas of
 * both must not share an etcd prefix.
 */
@Injectable()
export class EtcdDistributedLock
  implements DistributedLock, HealthIndicator, OnApplicationShutdown
{
  /** Upstream names its healthcheck `etcd`. */
  readonly name = 'etcd';

  private readonly logger = new Logger(EtcdDistributedLock.name);
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly ttlSeconds: number;
  private readonly callTimeoutMs: number;
  /** Who holds an entry, for operators reading etcd. */
  private readonly holder = `${hostname()}/${process.pid}`;
  private session?: LeaseSession;
  private readonly orphans = new Map<string, Orphan>();
  /** Deletes of released entries not answered yet (see `release`). */
  private readonly releasing = new Set<Promise<void>>();
  private orphanTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(options: EtcdDistributedLockOptions) {
    this.prefix = (options.prefix ?? '/chall-manager/locks').replace(/\/+$/, '');
    this.ttlSeconds = options.ttlSeconds ?? 10;
    this.callTimeoutMs = options.callTimeoutMs ?? 5_000;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 2) {
      // etcd rounds shorter TTLs up anyway, and etcd3 keeps alive every TTL/3 seconds.
      throw new Error(`etcd lease TTL must be an integer of at least 2 s, got ${this.ttlSeconds}`);
    }
    if (!(this.callTimeoutMs > 0)) {
      throw new Error(`etcd call timeout must be positive, got ${this.callTimeoutMs}`);
    }
    const callTimeoutMs = this.callTimeoutMs;
    this.client = new Etcd3({
      hosts: normaliseEndpoints(options.endpoints),
      ...(options.username
        ? { auth: { username: options.username, password: options.password ?? '' } }
        : {}),
      // Our calls pass their own deadline (see call()); this covers etcd3's internal ones (auth).
      // Streams (watch, keepalive) are long-lived and must not get a deadline.
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + callTimeoutMs },
      // No per-endpoint circuit breaker. etcd3 1.1.2 answers "invalid auth token" by calling
      // again from inside the breaker's half-open trial, and that inner call waits for the trial
      // to end: the client deadlocks, and every later call waits behind it, for good. Tokens are
      // lost exactly in outages (etcd forgets an unused one after --auth-token-ttl, and all of
      // them when it restarts), so with authentication every outage long enough to open the
      // breaker ended that way. call() already retries transient failures with a backoff.
      faultHandling: { host: () => noop },
    });
  }

  /** Runs `work` while holding `key` shared; see {@link DistributedLock}. */
  withReadLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.withLock('read', key, work, signal);
  }

  /** Runs `work` while holding `key` exclusively; see {@link DistributedLock}. */
  withWriteLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.withLock('write', key, work, signal);
  }

  /**
   * Health check named `etcd`: a linearizable read, so it fails without quorum, not only when
   * no member answers. Throws a {@link LockUnavailableError} within about 1 s on failure.
   */
  async check(): Promise<void> {
    try {
      await this.call(
        (options) => this.client.get(`${this.prefix}/health`).options(options).exec(),
        HEALTH_DEADLINE_MS,
      );
    } catch (err) {
      throw this.unavailable(err, HEALTH_DEADLINE_MS);
    }
  }

  /** Whether etcd answers a linearizable read within 1 s; see {@link check}. */
  async healthy(): Promise<boolean> {
    try {
      await this.check();
      return true;
    } catch {
      return false;
    }
  }

  /** Revokes the lease (freeing every entry of this replica at once) and closes the client. */
  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    // Releases under way finish first (each within the call budget), so that they do not
    // fail against a closed client; the revoke would free their entries anyway.
    await Promise.all([...this.releasing]);
    this.closed = true;
    clearTimeout(this.orphanTimer);
    this.orphans.clear();
    const session = this.session;
    this.session = undefined;
    if (session !== undefined) {
      markLost(session, new LockUnavailableError('the service is shutting down'));
      try {
        await this.call((options) => session.lease.revoke(options));
      } catch (err) {
        // Not fatal: the entries expire with the lease's TTL.
        this.logger.warn(`could not revoke the etcd lease on shutdown: ${describe(err)}`);
      }
    }
    this.client.close();
  }

  private async withLock<T>(
    mode: Mode,
    key: LockKey,
    work: () => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const held = await this.acquire(mode, key, signal);
    held.session.holders += 1;
    try {
      return await work();
    } finally {
      held.session.holders -= 1;
      this.release(held.entry, held.session);
    }
  }

  /**
   * Deletes a released entry without making the caller wait for etcd's answer: the work is done
   * and its result is the caller's; whoever waits on the entry is woken by the delete. Pending
   * deletes are tracked (shutdown waits for them), and `remove` hands a failed one to the
   * background retries.
   */
  private release(entry: string, session: LeaseSession): void {
    const pending = this.remove(entry, session).finally(() => this.releasing.delete(pending));
    this.releasing.add(pending);
  }

  private async acquire(
    mode: Mode,
    key: LockKey,
    signal: AbortSignal | undefined,
  ): Promise<{ entry: string; session: LeaseSession }> {
    signal?.throwIfAborted();
    if (this.closed) throw new LockUnavailableError('the client is shut down');
    const dir = `${this.prefix}/${key}/`;
    const entry = `${dir}${mode}-${randomUUID()}`;
    const queued: Enqueued = {};
    try {
      const { session, queue } = await this.enqueue(dir, entry, mode, queued);
      let blocker = nearestBlocker(queue, dir, entry, mode);
      while (blocker !== undefined) {
        await this.waitForDeletion(blocker.key, blocker.seenAt, session, signal);
        signal?.throwIfAborted();
        const res = await this.call((options) =>
          this.client
            .if(entry, 'Create', '>', 0)
            .then(...this.queueReads(dir, entry, mode))
            .else(...this.queueReads(dir, entry, mode))
            .options(options)
            .commit(),
        );
        blocker = nearestBlocker(snapshotOf(res), dir, entry, mode);
      }
      return { entry, session };
    } catch (err) {
      // Leave nothing behind: a waiter that is gone must not hold up those queued after it.
      if (queued.session !== undefined) {
        // A put that failed may still land later (timeout), hence deletes until a grace period.
        const graceMs = queued.answered ? 0 : Math.max(10_000, 2 * this.callTimeoutMs);
        // An aborting caller may count on a clean queue at once; a failing one is better served
        // by a prompt error, so its entry is removed in the background.
        if (signal?.aborted) await this.remove(entry, queued.session);
        if (!signal?.aborted || graceMs > 0) this.abandon(entry, queued.session, graceMs);
      }
      signal?.throwIfAborted(); // the port promises the signal's own reason
      throw this.unavailable(err, this.callTimeoutMs);
    }
  }

  /**
   * Puts the entry under the current lease and reads the queue it joined, in one transaction
   * (one round trip: a lock costs this and the delete). Records progress in `queued`; takes a
   * new lease if the current one had expired (the replica was idle and cut off from etcd).
   * A try retried after a timeout may find its entry already put by the first one: the
   * transaction then only reads.
   */
  private enqueue(
    dir: string,
    entry: string,
    mode: Mode,
    queued: Enqueued,
  ): Promise<{ session: LeaseSession; queue: QueueSnapshot }> {
    return this.call(
      async (options) => {
        const session = this.currentSession(options);
        const leaseId = await session.id;
        queued.session = session;
        let res: ITxnResponse;
        try {
          res = await this.client
            .if(entry, 'Create', '==', 0)
            .then(
              this.client.put(entry).value(this.holder).lease(leaseId),
              ...this.queueReads(dir, entry, mode),
            )
            .else(...this.queueReads(dir, entry, mode))
            .options(options)
            .commit();
        } catch (err) {
          if (err instanceof EtcdLeaseInvalidError) {
            this.logger.warn('etcd lease had expired; taking a new one');
            markLost(session, new LockUnavailableError(`lease expired: ${err.message}`));
          }
          throw err;
        }
        queued.answered = true;
        return { session, queue: snapshotOf(res) };
      },
      this.callTimeoutMs,
      (err) => err instanceof EtcdLeaseInvalidError,
    );
  }

  /**
   * The reads that tell whether `entry` is blocked: for a writer, every entry of the key; for a
   * reader, its own entry (for its place) and the writers' only. Readers do not block readers,
   * and a crowd of readers (every claim of a challenge takes its read lock) made each read
   * return the whole crowd: answers, and their decoding here, grew with its square.
   */
  private queueReads(dir: string, entry: string, mode: Mode): IOperation[] {
    return mode === 'write'
      ? [this.client.getAll().prefix(dir)]
      : [this.client.get(entry), this.client.getAll().prefix(`${dir}write-`)];
  }

  /**
   * Resolves once `key` is deleted after revision `seenAt`, or after a TTL as a safety net (the
   * caller re-reads anyway); rejects on abort or lease loss.
   */
  private waitForDeletion(
    key: string,
    seenAt: bigint,
    session: LeaseSession,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // `watcher()` registers synchronously, so no event can fire before the listeners below.
      const watcher = this.client
        .watch()
        .key(key)
        .startRevision(String(seenAt + 1n))
        .only('delete')
        .watcher();
      let settled = false;
      const settle = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(recheck);
        signal?.removeEventListener('abort', onAbort);
        session.lost.signal.removeEventListener('abort', onLost);
        watcher.cancel().catch(() => undefined);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- reasons are the callers' own
        if (err !== undefined) reject(err);
        else resolve();
      };
      const onAbort = (): void => settle(signal?.reason);
      const onLost = (): void => settle(session.lost.signal.reason);
      // A watch can be cancelled by etcd (compaction) or stall across a failover: re-read then.
      const recheck = setTimeout(() => settle(), this.ttlSeconds * 1_000);
      watcher.on('delete', () => settle());
      watcher.on('error', () => settle());
      signal?.addEventListener('abort', onAbort, { once: true });
      session.lost.signal.addEventListener('abort', onLost, { once: true });
      if (signal?.aborted) onAbort();
      if (session.lost.signal.aborted) onLost();
    });
  }

  /** The live lease session, granting a new lease (with `options`) when there is none. */
  private currentSession(options: CallOptions): LeaseSession {
    if (this.session !== undefined && !this.session.lost.signal.aborted) return this.session;
    const lease = this.client.lease(this.ttlSeconds, options);
    const lost = new AbortController();
    // Every waiter of the process listens to this one signal (and stops when it settles): any
    // number of them is legitimate, so Node's "possible leak" warning past 10 is noise.
    setMaxListeners(0, lost.signal);
    const session: LeaseSession = { lease, id: lease.grant(), lost, holders: 0 };
    // Awaited by acquisitions; this branch only keeps a failed grant from being "unhandled".
    session.id.catch(() => undefined);
    let granted = false;
    session.id.then(
      () => (granted = true),
      () => undefined,
    );
    lease.on('lost', (err) => {
      if (this.session === session) this.session = undefined;
      if (!granted) {
        this.logger.warn(`could not get an etcd lease: ${describe(err)}`);
      } else {
        this.logger.error(
          `etcd lease lost (${describe(err)}); ${session.holders} running critical section(s) ` +
            'lost their exclusivity; later acquisitions take a new lease',
        );
      }
      markLost(session, new LockUnavailableError(`lease lost: ${describe(err)}`));
    });
    // Our own markLost() must behave as etcd3's loss: forget the session, stop its keepalive.
    lost.signal.addEventListener('abort', () => {
      if (this.session === session) this.session = undefined;
      lease.release();
    });
    this.session = session;
    return session;
  }

  /**
   * Deletes one of our entries, or leaves it to the background retries when etcd does not
   * answer. Never throws: releasing must not mask the work's outcome.
   */
  private async remove(entry: string, session: LeaseSession): Promise<void> {
    if (this.closed) return; // the lease is revoked on shutdown, and the entry with it
    try {
      await this.call((options) => this.client.delete().key(entry).options(options).exec());
    } catch (err) {
      this.logger.warn(`could not delete lock entry ${entry}, retrying: ${describe(err)}`);
      this.abandon(entry, session, 0);
    }
  }

  /**
   * Keeps deleting `entry` in the background until a delete succeeds at least `graceMs` from
   * now, or until its lease is gone (the entry dies with it).
   */
  private abandon(entry: string, session: LeaseSession, graceMs: number): void {
    if (this.closed) return;
    this.orphans.set(entry, { session, due: Date.now(), confirmAfter: Date.now() + graceMs });
    this.scheduleOrphanSweep();
  }

  private scheduleOrphanSweep(): void {
    if (this.orphanTimer !== undefined || this.closed || this.orphans.size === 0) return;
    const next = Math.min(...[...this.orphans.values()].map((o) => o.due));
    this.orphanTimer = setTimeout(
      () => {
        this.sweepOrphans()
          .catch((err: unknown) => this.logger.error(`orphan sweep failed: ${describe(err)}`))
          .finally(() => {
            this.orphanTimer = undefined;
            this.scheduleOrphanSweep();
          });
      },
      Math.max(0, next - Date.now()),
    );
    // A pending retry must not keep the process alive on its own.
    this.orphanTimer.unref();
  }

  private async sweepOrphans(): Promise<void> {
    for (const [entry, orphan] of this.orphans) {
      if (this.closed) return;
      if (orphan.session.lost.signal.aborted) {
        this.orphans.delete(entry);
        continue;
      }
      if (orphan.due > Date.now()) continue;
      try {
        await this.call((options) => this.client.delete().key(entry).options(options).exec());
        if (Date.now() >= orphan.confirmAfter) this.orphans.delete(entry);
        else orphan.due = orphan.confirmAfter;
      } catch {
        orphan.due = Date.now() + Math.min(this.callTimeoutMs, 5_000);
      }
    }
  }

  /**
   * Runs one etcd operation within `budgetMs`. Each try gets a third of the budget, so that a
   * try stalled on a leader that just died (its proposal is lost; etcd would answer only after
   * its own 7 s request timeout) leaves time to retry once a new leader is elected. Transient
   * errors (etcd3's "recoverable" ones, or `retryable`) are retried with a short backoff; the
   * operations are idempotent (unique keys), so retrying is safe. A try that outlives its
   * deadline (a client-side stall that gRPC's deadline does not cover, such as waiting for a
   * token) is abandoned as timed out: no call outlives its budget, whatever etcd3 does.
   */
  private async call<T>(
    op: (options: CallOptions) => Promise<T>,
    budgetMs = this.callTimeoutMs,
    retryable: (err: unknown) => boolean = () => false,
  ): Promise<T> {
    const giveUpAt = Date.now() + budgetMs;
    const tryMs = Math.max(1, Math.floor(budgetMs / 3));
    for (let pause = 50; ; pause = Math.min(2 * pause, 500)) {
      try {
        const deadline = Math.min(Date.now() + tryMs, giveUpAt);
        return await withinDeadline(op({ deadline }), deadline);
      } catch (err) {
        const transient = isTransient(err) || retryable(err);
        if (!transient || this.closed || Date.now() + pause >= giveUpAt) throw err;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  private unavailable(err: unknown, budgetMs: number): LockUnavailableError {
    if (err instanceof LockUnavailableError) return err;
    if (err instanceof GRPCDeadlineExceededError) {
      return new LockUnavailableError(`etcd did not answer within ${budgetMs} ms`, { cause: err });
    }
    return new LockUnavailableError(describe(err), { cause: err });
  }
}

/**
 * `pending`, or a {@link GRPCDeadlineExceededError} once `deadline` (epoch ms) has passed plus a
 * grace for gRPC's own deadline to answer first.
 */
async function withinDeadline<T>(pending: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new GRPCDeadlineExceededError('etcd call stalled in the client past its deadline')),
      Math.max(0, deadline - Date.now()) + DEADLINE_GRACE_MS,
    );
  });
  try {
    return await Promise.race([pending, late]);
  } finally {
    clearTimeout(timer);
    // The abandoned call may still settle later; its outcome is nobody's business then.
    pending.catch(() => undefined);
  }
}

function isTransient(err: unknown): boolean {
  return err instanceof Error && isRecoverableError(err);
}

function markLost(session: LeaseSession, reason: LockUnavailableError): void {
  if (!session.lost.signal.aborted) session.lost.abort(reason);
}

/** `http://host:port` → `host:port`; refuses anything etcd3 would misread. */
function normaliseEndpoints(endpoints: readonly string[]): string[] {
  const hosts = endpoints.map((e) => e.trim()).filter((e) => e !== '');
  if (hosts.length === 0) throw new Error('etcd: no endpoint given');
  return hosts.map((endpoint) => {
    const host = endpoint.replace(/^http:\/\//, '').replace(/\/+$/, '');
    if (!/^[^\s/]+:\d+$/.test(host)) {
      throw new Error(`etcd endpoint "${endpoint}" is not host:port or http://host:port`);
    }
    return host;
  });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

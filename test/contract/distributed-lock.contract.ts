import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockKeys, type LockKey } from '../../src/shared/domain/lock-keys';
import type { DistributedLock } from '../../src/shared/ports/distributed-lock.port';
import { deferred, letPendingWorkRun, waitUntil } from './helpers';

/** A lock adapter and how to dispose of it after each test. */
export interface LockUnderTest {
  lock: DistributedLock;
  cleanup: () => Promise<void>;
  /**
   * How many holders and waiters `key` has, for an adapter that works out of process: "X has
   * not started" is asserted once X is seen queued. Without it, a few event-loop turns settle
   * an in-process adapter.
   */
  entries?: (key: LockKey) => Promise<number>;
}

/**
 * The promised behaviour of {@link DistributedLock}, for every
 * adapter: in-memory from its unit spec, etcd from its e2e spec. Each test uses fresh keys, so
 * a shared etcd needs no cleanup between tests.
 */
export function distributedLockContract(
  name: string,
  makeLock: () => Promise<LockUnderTest>,
): void {
  describe(`${name} (DistributedLock contract)`, () => {
    let subject: LockUnderTest;
    let lock: DistributedLock;
    let key: LockKey;

    beforeEach(async () => {
      subject = await makeLock();
      lock = subject.lock;
      key = lockKeys.challenge(`contract-${randomUUID()}`);
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    /** Lets the adapter settle once `key` has `count` holders and waiters. */
    async function queued(count: number): Promise<void> {
      const { entries } = subject;
      if (entries === undefined) return letPendingWorkRun(0);
      await waitUntil(
        async () => (await entries(key)) === count,
        `for ${count} holders and waiters of the key`,
        10_000,
      );
      // And what the adapter does on seeing them, before asserting who runs.
      await letPendingWorkRun(0);
    }

    /** Starts `mode` work on `k` that records its start and holds the lock until released. */
    function hold(mode: 'read' | 'write', k: LockKey = key, signal?: AbortSignal) {
      const gate = deferred();
      const state = { started: false };
      const work = async (): Promise<string> => {
        state.started = true;
        await gate.promise;
        return mode;
      };
      const done =
        mode === 'read' ? lock.withReadLock(k, work, signal) : lock.withWriteLock(k, work, signal);
      return {
        done,
        get started() {
          return state.started;
        },
        release: () => gate.resolve(),
      };
    }

    describe('withWriteLock', () => {
      it("should resolve with the work's result when the work succeeds", async () => {
        await expect(lock.withWriteLock(key, () => Promise.resolve(42))).resolves.toBe(42);
      });

      it("should reject with the work's error when the work throws", async () => {
        const boom = new Error('boom');
        await expect(lock.withWriteLock(key, () => Promise.reject(boom))).rejects.toBe(boom);
      });

      it('should exclude a second writer when a writer holds the key', async () => {
        const first = hold('write');
        await waitUntil(() => first.started, 'for the first writer');
        const second = hold('write');
        await queued(2);
        expect(second.started).toBe(false);

        first.release();
        await waitUntil(() => second.started, 'for the second writer');
        second.release();
        await expect(Promise.all([first.done, second.done])).resolves.toEqual(['write', 'write']);
      });

      it('should wait for every reader when readers hold the key', async () => {
        const r1 = hold('read');
        const r2 = hold('read');
        await waitUntil(() => r1.started && r2.started, 'for both readers');
        const writer = hold('write');
        await queued(3);
        expect(writer.started).toBe(false);

        r1.release();
        await queued(2);
        expect(writer.started).toBe(false);
        r2.release();
        await waitUntil(() => writer.started, 'for the writer');
        writer.release();
        await Promise.all([r1.done, r2.done, writer.done]);
      });

      it('should release the key when the work throws', async () => {
        await expect(
          lock.withWriteLock(key, () => Promise.reject(new Error('boom'))),
        ).rejects.toThrow('boom');
        await expect(lock.withWriteLock(key, () => Promise.resolve('next'))).resolves.toBe('next');
        await expect(lock.withReadLock(key, () => Promise.resolve('read'))).resolves.toBe('read');
      });

      it('should release the key when the work throws synchronously', async () => {
        const work = (): Promise<never> => {
          throw new Error('sync boom');
        };
        await expect(lock.withWriteLock(key, work)).rejects.toThrow('sync boom');
        await expect(lock.withWriteLock(key, () => Promise.resolve('next'))).resolves.toBe('next');
      });

      it('should reject with the abort reason and hold nothing when aborted while waiting', async () => {
        const holder = hold('write');
        await waitUntil(() => holder.started, 'for the holder');
        const controller = new AbortController();
        const waiter = hold('write', key, controller.signal);
        await queued(2);
        const reason = new Error('client went away');
        controller.abort(reason);
        await expect(waiter.done).rejects.toBe(reason);
        expect(waiter.started).toBe(false);

        holder.release();
        await holder.done;
        // Nothing held nor queued: a new writer gets the key at once.
        await expect(lock.withWriteLock(key, () => Promise.resolve('free'))).resolves.toBe('free');
      });

      it('should reject without running the work when the signal is already aborted', async () => {
        const controller = new AbortController();
        controller.abort(new Error('too late'));
        let ran = false;
        const work = (): Promise<void> => {
          ran = true;
          return Promise.resolve();
        };
        await expect(lock.withWriteLock(key, work, controller.signal)).rejects.toThrow('too late');
        expect(ran).toBe(false);
        await expect(lock.withWriteLock(key, () => Promise.resolve('free'))).resolves.toBe('free');
      });

      it('should let queued readers in when the waiting writer ahead of them aborts', async () => {
        const r1 = hold('read');
        await waitUntil(() => r1.started, 'for the first reader');
        const controller = new AbortController();
        const writer = hold('write', key, controller.signal);
        await queued(2);
        const r2 = hold('read');
        await queued(3);
        expect(r2.started).toBe(false);

        controller.abort(new Error('cancelled'));
        await expect(writer.done).rejects.toThrow('cancelled');
        await waitUntil(() => r2.started, 'for the second reader');
        expect(r1.started && !writer.started).toBe(true);
        r1.release();
        r2.release();
        await Promise.all([r1.done, r2.done]);
      });

      it('should not block a writer of another key when a writer holds a key', async () => {
        const other = lockKeys.challenge(`contract-${randomUUID()}`);
        const holder = hold('write');
        await waitUntil(() => holder.started, 'for the holder');
        await expect(lock.withWriteLock(other, () => Promise.resolve('other'))).resolves.toBe(
          'other',
        );
        await expect(lock.withReadLock(other, () => Promise.resolve('other'))).resolves.toBe(
          'other',
        );
        holder.release();
        await holder.done;
      });
    });

    describe('withReadLock', () => {
      it('should let readers overlap when only readers hold the key', async () => {
        const r1 = hold('read');
        await waitUntil(() => r1.started, 'for the first reader');
        const r2 = hold('read');
        await waitUntil(() => r2.started, 'for the second reader while the first holds');
        r1.release();
        r2.release();
        await expect(Promise.all([r1.done, r2.done])).resolves.toEqual(['read', 'read']);
      });

      it('should wait when a writer holds the key', async () => {
        const writer = hold('write');
        await waitUntil(() => writer.started, 'for the writer');
        const reader = hold('read');
        await queued(2);
        expect(reader.started).toBe(false);
        writer.release();
        await waitUntil(() => reader.started, 'for the reader');
        reader.release();
        await Promise.all([writer.done, reader.done]);
      });

      it('should block new readers when a writer is waiting (writer preference)', async () => {
        const r1 = hold('read');
        await waitUntil(() => r1.started, 'for the first reader');
        const writer = hold('write');
        await queued(2);
        const r2 = hold('read');
        await queued(3);
        expect(writer.started).toBe(false);
        expect(r2.started).toBe(false);

        r1.release();
        await waitUntil(() => writer.started, 'for the writer');
        await queued(2);
        expect(r2.started).toBe(false);
        writer.release();
        await waitUntil(() => r2.started, 'for the second reader');
        r2.release();
        await Promise.all([r1.done, writer.done, r2.done]);
      });

      it('should release the key when the work throws', async () => {
        await expect(
          lock.withReadLock(key, () => Promise.reject(new Error('boom'))),
        ).rejects.toThrow('boom');
        await expect(lock.withWriteLock(key, () => Promise.resolve('next'))).resolves.toBe('next');
      });

      it('should reject with the abort reason and hold nothing when aborted while waiting', async () => {
        const writer = hold('write');
        await waitUntil(() => writer.started, 'for the writer');
        const controller = new AbortController();
        const reader = hold('read', key, controller.signal);
        await queued(2);
        const reason = new Error('deadline exceeded');
        controller.abort(reason);
        await expect(reader.done).rejects.toBe(reason);
        expect(reader.started).toBe(false);
        writer.release();
        await writer.done;
        await expect(lock.withWriteLock(key, () => Promise.resolve('free'))).resolves.toBe('free');
      });
    });
  });
}

import { describe, expect, it } from 'vitest';
import { lockKeys } from '../../shared/domain/lock-keys';
import { distributedLockContract } from '../../../test/contract/distributed-lock.contract';
import { deferred, waitUntil } from '../../../test/contract/helpers';
import { InMemoryDistributedLock } from './in-memory-distributed-lock.adapter';

distributedLockContract('InMemoryDistributedLock', () =>
  Promise.resolve({ lock: new InMemoryDistributedLock(), cleanup: () => Promise.resolve() }),
);

describe('InMemoryDistributedLock', () => {
  const key = lockKeys.challenge('c1');

  describe('withWriteLock', () => {
    it('should admit waiting writers in arrival order when the holder releases', async () => {
      const lock = new InMemoryDistributedLock();
      const gate = deferred();
      const order: string[] = [];
      const first = lock.withWriteLock(key, async () => {
        order.push('first');
        await gate.promise;
      });
      const rest = ['w1', 'w2', 'w3'].map((name) =>
        lock.withWriteLock(key, () => {
          order.push(name);
          return Promise.resolve();
        }),
      );
      gate.resolve();
      await Promise.all([first, ...rest]);
      expect(order).toEqual(['first', 'w1', 'w2', 'w3']);
    });

    it('should admit readers queued behind a writer together when the writer releases', async () => {
      const lock = new InMemoryDistributedLock();
      const gate = deferred();
      const readersIn = { count: 0 };
      const readersGate = deferred();
      const writer = lock.withWriteLock(key, () => gate.promise);
      const readers = [1, 2, 3].map(() =>
        lock.withReadLock(key, async () => {
          readersIn.count += 1;
          await readersGate.promise;
        }),
      );
      gate.resolve();
      await waitUntil(() => readersIn.count === 3, 'for the three readers at once');
      readersGate.resolve();
      await Promise.all([writer, ...readers]);
    });

    it('should reject with an AbortError when the signal is aborted without a reason', async () => {
      const lock = new InMemoryDistributedLock();
      const gate = deferred();
      const holder = lock.withWriteLock(key, () => gate.promise);
      const controller = new AbortController();
      const waiter = lock.withWriteLock(key, () => Promise.resolve(), controller.signal);
      controller.abort();
      await expect(waiter).rejects.toMatchObject({ name: 'AbortError' });
      gate.resolve();
      await holder;
    });

    it('should keep running the work when the signal is aborted after the key was granted', async () => {
      const lock = new InMemoryDistributedLock();
      const controller = new AbortController();
      const result = lock.withWriteLock(
        key,
        async () => {
          controller.abort();
          await Promise.resolve();
          return 'done';
        },
        controller.signal,
      );
      await expect(result).resolves.toBe('done');
      expect(lock.activeKeys).toBe(0);
    });
  });

  describe('activeKeys', () => {
    it('should forget every key when all holders and waiters are gone', async () => {
      const lock = new InMemoryDistributedLock();
      const gate = deferred();
      const controller = new AbortController();
      const held = lock.withWriteLock(key, () => gate.promise);
      const aborted = lock.withReadLock(key, () => Promise.resolve(), controller.signal);
      const others = Array.from({ length: 50 }, (_, i) =>
        lock.withReadLock(lockKeys.challenge(`other-${i}`), () => Promise.resolve()),
      );
      expect(lock.activeKeys).toBeGreaterThan(1);
      controller.abort();
      await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
      await Promise.all(others);
      expect(lock.activeKeys).toBe(1);
      gate.resolve();
      await held;
      await expect(lock.withReadLock(key, () => Promise.reject(new Error('boom')))).rejects.toThrow(
        'boom',
      );
      expect(lock.activeKeys).toBe(0);
    });
  });
});

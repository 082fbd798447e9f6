import { afterEach, describe, expect, it } from 'vitest';
import { lockKeys } from '../../shared/domain/lock-keys';
import {
  EtcdDistributedLock,
  LockUnavailableError,
  type EtcdDistributedLockOptions,
} from './etcd-distributed-lock.adapter';

// Construction only: etcd3 connects lazily, so no server is needed. Locking against a real etcd
// is covered by test/e2e/adapters/etcd-distributed-lock.e2e-spec.ts.
describe('EtcdDistributedLock', () => {
  const made: EtcdDistributedLock[] = [];
  const make = (options: EtcdDistributedLockOptions): EtcdDistributedLock => {
    const lock = new EtcdDistributedLock(options);
    made.push(lock);
    return lock;
  };
  afterEach(async () => {
    await Promise.all(made.splice(0).map((l) => l.onApplicationShutdown()));
  });

  describe('constructor', () => {
    it.each([
      [['127.0.0.1:2379']],
      [['http://127.0.0.1:2379', ' etcd-1.etcd:2379 ', '']],
      [['http://[::1]:2379/']],
    ])('should accept %j when every endpoint is host:port or http://host:port', (endpoints) => {
      expect(() => make({ endpoints })).not.toThrow();
    });

    it.each([
      [[], 'no endpoint'],
      [['', ' '], 'no endpoint'],
      [['https://127.0.0.1:2379'], 'not host:port'],
      [['127.0.0.1'], 'not host:port'],
      [['http://127.0.0.1:2379/v3'], 'not host:port'],
    ])('should refuse %j when an endpoint is missing or malformed', (endpoints, message) => {
      expect(() => new EtcdDistributedLock({ endpoints })).toThrow(message);
    });

    it.each([1, 2.5, 0])(
      'should refuse a lease TTL of %s when it is below 2 s or fractional',
      (ttl) => {
        expect(
          () => new EtcdDistributedLock({ endpoints: ['127.0.0.1:2379'], ttlSeconds: ttl }),
        ).toThrow('lease TTL');
      },
    );

    it('should refuse a call timeout when it is not positive', () => {
      expect(
        () => new EtcdDistributedLock({ endpoints: ['127.0.0.1:2379'], callTimeoutMs: 0 }),
      ).toThrow('call timeout');
    });

    it("should name its health check 'etcd' when registered as an indicator", () => {
      expect(make({ endpoints: ['127.0.0.1:2379'] }).name).toBe('etcd');
    });
  });

  describe('LockUnavailableError', () => {
    it('should answer SERVICE_UNAVAILABLE and keep the detail for the logs when built from a failure', () => {
      const cause = new Error('14 UNAVAILABLE');
      const err = new LockUnavailableError('no quorum', { cause });
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe('LockUnavailableError');
      expect(err.reason).toBe('SERVICE_UNAVAILABLE');
      expect(err.message).toBe(
        'Service temporarily unavailable (etcd unreachable). Try again later.',
      );
      expect(err.detail).toBe('no quorum');
      expect(err.cause).toBe(cause);
    });
  });

  describe('withWriteLock', () => {
    it('should reject with the abort reason without calling etcd when the signal is already aborted', async () => {
      const lock = make({ endpoints: ['127.0.0.1:1'] });
      const reason = new Error('gone');
      await expect(
        lock.withWriteLock(
          lockKeys.challenge('c1'),
          () => Promise.resolve(),
          AbortSignal.abort(reason),
        ),
      ).rejects.toBe(reason);
    });
  });
});

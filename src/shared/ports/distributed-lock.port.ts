import type { LockKey } from '../domain/lock-keys';

/**
 * Readers-writer lock shared by all replicas.
 *
 * - Readers of a key share it; a writer excludes everyone; a waiting writer blocks new readers
 *   (writer preference, so writers never starve).
 * - The lock is released when `work` settles, on throw as on success.
 * - Aborting `signal` while waiting rejects with the abort reason and leaves nothing held.
 * - A holder that dies (process or replica) frees its locks when its lease expires.
 */
export abstract class DistributedLock {
  abstract withReadLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  abstract withWriteLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

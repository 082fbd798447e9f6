import { Injectable } from '@nestjs/common';
import type { LockKey } from '../../shared/domain/lock-keys';
import { DistributedLock } from '../../shared/ports/distributed-lock.port';

type Mode = 'read' | 'write';

interface Waiter {
  mode: Mode;
  grant: () => void;
}

/** Holders and the FIFO queue of one key; deleted as soon as it is idle. */
interface KeyState {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

/**
 * Process-local readers-writer lock, for a single replica (no etcd endpoint configured).
 * upstream: ctfer-io/chall-manager pkg/lock/local.go (a map of writer-preferring sync.RWMutex),
 * with three fixes: waiting honours the abort signal, idle keys are dropped (upstream's map
 * grows forever), and waiters are served in arrival order.
 *
 * Grant rule, per key: one FIFO queue of waiters. A reader arriving while nobody waits and no
 * writer holds is admitted at once; anyone else queues. On release, the head of the queue is
 * admitted: a writer when nobody holds, or every consecutive reader at the head while no writer
 * holds. Hence a waiting writer blocks later readers (writer preference, no writer starvation),
 * writers go in arrival order, and readers queued behind a writer go in one batch after it.
 */
@Injectable()
export class InMemoryDistributedLock implements DistributedLock {
  private readonly keys = new Map<LockKey, KeyState>();

  /** Runs `work` while holding `key` shared; see {@link DistributedLock}. */
  withReadLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.withLock('read', key, work, signal);
  }

  /** Runs `work` while holding `key` exclusively; see {@link DistributedLock}. */
  withWriteLock<T>(key: LockKey, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.withLock('write', key, work, signal);
  }

  /** Keys currently held or waited for; for tests and metrics (idle keys are not kept). */
  get activeKeys(): number {
    return this.keys.size;
  }

  private async withLock<T>(
    mode: Mode,
    key: LockKey,
    work: () => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    await this.acquire(mode, key, signal);
    try {
      return await work();
    } finally {
      this.release(mode, key);
    }
  }

  private acquire(mode: Mode, key: LockKey, signal: AbortSignal | undefined): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the port promises the signal's own reason
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const state = this.stateOf(key);
    if (state.queue.length === 0 && canAdmit(state, mode)) {
      admit(state, mode);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = state.queue.indexOf(waiter);
        if (index < 0) return; // already granted: the holder runs and releases normally
        state.queue.splice(index, 1);
        // A removed waiting writer may have been all that held back the readers behind it.
        this.pump(key, state);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- as above
        reject(abortReason(signal));
      };
      const waiter: Waiter = {
        mode,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      state.queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(mode: Mode, key: LockKey): void {
    const state = this.keys.get(key);
    if (state === undefined) throw new Error(`lock ${key} released but not held`);
    if (mode === 'write') state.writer = false;
    else state.readers -= 1;
    this.pump(key, state);
  }

  /** Admits whoever may go at the head of the queue, then forgets the key if idle. */
  private pump(key: LockKey, state: KeyState): void {
    for (let head = state.queue[0]; head !== undefined; head = state.queue[0]) {
      if (!canAdmit(state, head.mode)) break;
      state.queue.shift();
      admit(state, head.mode);
      head.grant();
      if (head.mode === 'write') break;
    }
    if (state.readers === 0 && !state.writer && state.queue.length === 0) this.keys.delete(key);
  }

  private stateOf(key: LockKey): KeyState {
    let state = this.keys.get(key);
    if (state === undefined) {
      state = { readers: 0, writer: false, queue: [] };
      this.keys.set(key, state);
    }
    return state;
  }
}

function canAdmit(state: KeyState, mode: Mode): boolean {
  return mode === 'read' ? !state.writer : !state.writer && state.readers === 0;
}

function admit(state: KeyState, mode: Mode): void {
  if (mode === 'write') state.writer = true;
  else state.readers += 1;
}

function abortReason(signal: AbortSignal | undefined): unknown {
  // AbortSignal.abort() sets a DOMException reason; a bare abort() of old code may not.
  return signal?.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

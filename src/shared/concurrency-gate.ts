import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who is waiting: a player or an operator (`interactive`, served first) or the service itself
 * (`background`: pool spin-ups, janitor sweeps), which can always wait a little longer.
 */
export type GatePriority = 'interactive' | 'background';

const PRIORITIES: readonly GatePriority[] = ['interactive', 'background'];

const priorityContext = new AsyncLocalStorage<GatePriority>();

/** Runs `work` (and everything it starts) as background work for every gate it passes. */
export function inBackground<T>(work: () => T): T {
  return priorityContext.run('background', work);
}

/** The priority of the work running now: background inside {@link inBackground}, else interactive. */
export function currentPriority(): GatePriority {
  return priorityContext.getStore() ?? 'interactive';
}

interface Waiter {
  admit: () => void;
}

/**
 * At most `limit` jobs at once; the others wait in line. Interactive jobs go before background
 * ones; within a priority, keys (challenges) take turns, so one key with many jobs queued does
 * not starve the others, and each key's jobs run in arrival order.
 */
export class ConcurrencyGate {
  private active = 0;
  /** Per priority: the queue of each key, in the order keys take turns. */
  private readonly queues: Record<GatePriority, Map<string, Waiter[]>> = {
    interactive: new Map(),
    background: new Map(),
  };

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
  }

  /** Jobs running now. */
  get running(): number {
    return this.active;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    let count = 0;
    for (const p of PRIORITIES) for (const q of this.queues[p].values()) count += q.length;
    return count;
  }

  /**
   * Runs `work` once a slot is free and frees it when `work` settles. If `signal` aborts while
   * waiting, the job leaves the line and rejects with the signal's reason; `onQueued` is called
   * when the job has to wait.
   */
  async run<T>(
    job: { key: string; priority?: GatePriority; signal?: AbortSignal; onQueued?: () => void },
    work: () => Promise<T>,
  ): Promise<T> {
    await this.acquire(job.key, job.priority ?? 'interactive', job.signal, job.onQueued);
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private acquire(
    key: string,
    priority: GatePriority,
    signal?: AbortSignal,
    onQueued?: () => void,
  ): Promise<void> {
    signal?.throwIfAborted();
    if (this.active < this.limit && this.waiting === 0) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const queues = this.queues[priority];
      const onAbort = (): void => {
        const queue = queues.get(key);
        const at = queue?.indexOf(waiter) ?? -1;
        if (queue && at >= 0) {
          queue.splice(at, 1);
          if (queue.length === 0) queues.delete(key);
        }
        const reason: unknown = signal?.reason;
        reject(reason instanceof Error ? reason : new DOMException('aborted', 'AbortError'));
      };
      const waiter: Waiter = {
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const queue = queues.get(key);
      if (queue) queue.push(waiter);
      else queues.set(key, [waiter]);
      signal?.addEventListener('abort', onAbort, { once: true });
      onQueued?.();
    });
  }

  private release(): void {
    this.active--;
    const next = this.next();
    if (next) {
      this.active++;
      next.admit();
    }
  }

  /** The first waiter of the key whose turn it is, at the highest priority with any. */
  private next(): Waiter | undefined {
    for (const p of PRIORITIES) {
      const queues = this.queues[p];
      for (const [key, queue] of queues) {
        const waiter = queue.shift();
        // The key goes to the back of the line (Map keeps insertion order).
        queues.delete(key);
        if (queue.length > 0) queues.set(key, queue);
        if (waiter) return waiter;
      }
    }
    return undefined;
  }
}

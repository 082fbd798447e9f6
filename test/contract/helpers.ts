import { vi } from 'vitest';

/** A promise with its settle functions exposed, to hold work inside a lock until a test says. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Waits until `condition` holds; fails after `timeoutMs`, a bound on failure, not on speed. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await condition())) throw new Error(`timed out after ${timeoutMs} ms waiting ${what}`);
    },
    { timeout: timeoutMs, interval: 5 },
  );
}

/**
 * Lets pending work run for `ms` (0: a few event-loop turns), so that "X has not started" is
 * meaningful. In-memory adapters settle within a turn; networked ones need real time.
 */
export async function letPendingWorkRun(ms: number): Promise<void> {
  if (ms > 0) {
    await new Promise((r) => setTimeout(r, ms));
    return;
  }
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

interface Flight<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

/**
 * Runs one piece of work per key at a time and shares its result with every caller that asks
 * meanwhile. Each caller may abandon its wait with its own signal; the work itself is aborted
 * only when every caller has abandoned it.
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  /** Joins the flight for `key`, starting `work` if none is running. */
  run(key: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    let flight = this.flights.get(key);
    if (!flight) {
      const controller = new AbortController();
      const started: Flight<T> = {
        controller,
        waiters: 0,
        promise: work(controller.signal).finally(() => {
          if (this.flights.get(key) === started) this.flights.delete(key);
        }),
      };
      // Each waiter observes the outcome itself; this only keeps an abandoned flight's
      // rejection from being reported as unhandled.
      started.promise.catch(() => undefined);
      this.flights.set(key, started);
      flight = started;
    }
    const joined = flight;
    joined.waiters++;
    if (!signal) return joined.promise;

    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        joined.waiters--;
        if (joined.waiters === 0) {
          // Nobody waits any more: stop the work, and let the next caller start afresh.
          if (this.flights.get(key) === joined) this.flights.delete(key);
          joined.controller.abort(signal.reason);
        }
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      joined.promise
        .finally(() => signal.removeEventListener('abort', onAbort))
        .then(resolve, reject);
    });
  }

  /** Keys whose work is running (for tests and metrics). */
  get size(): number {
    return this.flights.size;
  }
}

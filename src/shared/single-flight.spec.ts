import { describe, expect, it } from 'vitest';
import { SingleFlight } from './single-flight';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('SingleFlight', () => {
  it('should run the work once when callers ask for one key concurrently', async () => {
    const flights = new SingleFlight<string>();
    const gate = deferred<string>();
    let runs = 0;
    const work = (): Promise<string> => {
      runs++;
      return gate.promise;
    };
    const all = Promise.all([
      flights.run('k', work),
      flights.run('k', work),
      flights.run('k', work),
    ]);
    gate.resolve('done');
    expect(await all).toEqual(['done', 'done', 'done']);
    expect(runs).toBe(1);
    expect(flights.size).toBe(0);
  });

  it('should start afresh when the previous flight failed', async () => {
    const flights = new SingleFlight<number>();
    await expect(flights.run('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await flights.run('k', () => Promise.resolve(2))).toBe(2);
  });

  it('should keep the work running when one of two waiters aborts', async () => {
    const flights = new SingleFlight<string>();
    const gate = deferred<string>();
    let workSignal: AbortSignal | undefined;
    const work = (signal: AbortSignal): Promise<string> => {
      workSignal = signal;
      return gate.promise;
    };
    const quitter = new AbortController();
    const first = flights.run('k', work, quitter.signal);
    const second = flights.run('k', work, new AbortController().signal);
    quitter.abort(new Error('gone'));
    await expect(first).rejects.toThrow('gone');
    expect(workSignal?.aborted).toBe(false);
    gate.resolve('ok');
    expect(await second).toBe('ok');
  });

  it('should abort the work when every waiter aborts', async () => {
    const flights = new SingleFlight<string>();
    let workSignal: AbortSignal | undefined;
    const work = (signal: AbortSignal): Promise<string> => {
      workSignal = signal;
      return new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(new Error('stopped'))),
      );
    };
    const a = new AbortController();
    const b = new AbortController();
    const results = [flights.run('k', work, a.signal), flights.run('k', work, b.signal)];
    a.abort(new Error('a gone'));
    b.abort(new Error('b gone'));
    await expect(results[0]).rejects.toThrow('a gone');
    await expect(results[1]).rejects.toThrow('b gone');
    expect(workSignal?.aborted).toBe(true);
    expect(flights.size).toBe(0);
  });

  it('should reject at once when the signal is already aborted', async () => {
    const flights = new SingleFlight<string>();
    let runs = 0;
    await expect(
      flights.run(
        'k',
        () => {
          runs++;
          return Promise.resolve('x');
        },
        AbortSignal.abort(new Error('early')),
      ),
    ).rejects.toThrow('early');
    expect(runs).toBe(0);
  });
});

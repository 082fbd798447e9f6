import { describe, expect, it } from 'vitest';
import { deferred } from '../../test/contract/helpers';
import { mapAhead } from './map-ahead';

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

describe('mapAhead', () => {
  it('should yield results in the order of the items when later ones finish first', async () => {
    const gates = [deferred<void>(), deferred<void>(), deferred<void>()];
    const source = mapAhead([0, 1, 2], 3, async (i) => {
      await gates[i]!.promise;
      return i * 10;
    });
    const all = collect(source);
    gates[2]!.resolve();
    gates[1]!.resolve();
    gates[0]!.resolve();
    expect(await all).toEqual([0, 10, 20]);
  });

  it('should run at most limit calls at once when there are more items', async () => {
    let running = 0;
    let peak = 0;
    const results = await collect(
      mapAhead([...Array(20).keys()], 4, async (i) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setImmediate(r));
        running--;
        return i;
      }),
    );
    expect(results).toEqual([...Array(20).keys()]);
    expect(peak).toBe(4);
  });

  it('should yield what came before a failure, then throw it when its turn comes', async () => {
    const seen: number[] = [];
    const failing = mapAhead([1, 2, 3], 2, (i) =>
      i === 2 ? Promise.reject(new Error('boom')) : Promise.resolve(i),
    );
    await expect(
      (async () => {
        for await (const item of failing) seen.push(item);
      })(),
    ).rejects.toThrow('boom');
    expect(seen).toEqual([1]);
  });

  it('should leave no unhandled rejection when the consumer stops before a failed call', async () => {
    const source = mapAhead([1, 2], 2, (i) =>
      i === 2 ? Promise.reject(new Error('dropped')) : Promise.resolve(i),
    );
    for await (const item of source) {
      expect(item).toBe(1);
      break;
    }
    await new Promise((r) => setImmediate(r));
  });

  it('should yield nothing when there are no items', async () => {
    expect(await collect(mapAhead([], 4, () => Promise.resolve(1)))).toEqual([]);
  });
});

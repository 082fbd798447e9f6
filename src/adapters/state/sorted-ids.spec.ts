import { describe, expect, it } from 'vitest';
import { SortedIds } from './sorted-ids';

describe('SortedIds', () => {
  it('should keep ids sorted and unique through adds and deletes', () => {
    const ids = new SortedIds(['c', 'a', 'b', 'a']);
    expect(ids.toArray()).toEqual(['a', 'b', 'c']);
    ids.add('bb');
    ids.add('0');
    ids.add('b');
    expect(ids.toArray()).toEqual(['0', 'a', 'b', 'bb', 'c']);
    expect(ids.delete('b')).toBe(true);
    expect(ids.delete('b')).toBe(false);
    expect(ids.delete('zz')).toBe(false);
    expect(ids.has('bb')).toBe(true);
    expect(ids.has('b')).toBe(false);
    expect(ids.size).toBe(4);
    expect(ids.toArray()).toEqual(['0', 'a', 'bb', 'c']);
  });

  it('should agree with a sorted Set over random operations', () => {
    const ids = new SortedIds();
    const model = new Set<string>();
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 5_000; i++) {
      const id = (next() % 300).toString(16);
      if (next() % 3 === 0) expect(ids.delete(id)).toBe(model.delete(id));
      else {
        ids.add(id);
        model.add(id);
      }
    }
    expect(ids.toArray()).toEqual([...model].sort());
    expect(ids.size).toBe(model.size);
  });

  it('should hand out copies', () => {
    const ids = new SortedIds(['a']);
    ids.toArray().push('b');
    expect(ids.toArray()).toEqual(['a']);
  });
});

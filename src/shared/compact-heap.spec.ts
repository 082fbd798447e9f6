import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { compactHeapAfterStartUp } from './compact-heap';

describe('compactHeapAfterStartUp', () => {
  it('should collect without exposing gc to this context or to later ones', () => {
    const before = typeof (globalThis as { gc?: unknown }).gc;
    compactHeapAfterStartUp();
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe(before);
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });

  it('should keep objects that are still referenced', () => {
    const kept = { values: Array.from({ length: 1000 }, (_, i) => `value-${i}`) };
    compactHeapAfterStartUp();
    expect(kept.values[999]).toBe('value-999');
  });
});

import { describe, expect, it } from 'vitest';
import { poolDelta, shouldRefillAfterClaim, shouldRefillAfterDelete } from './pool-delta';

describe('poolDelta', () => {
  // upstream: ctfer-io/chall-manager pkg/pool/delta_test.go, case by case.
  it.each([
    // min, max, claimed, pooled -> create, delete
    [1, 0, 0, 3, 0, 2], // too many pooled, no max: shrink to min
    [3, 0, 0, 1, 2, 0], // too few pooled, no max: grow to min
    [2, 6, 1, 2, 0, 0], // at min, max far: nothing
    [2, 6, 2, 1, 1, 0], // under min, max far: one more
    [2, 2, 1, 2, 0, 1], // max leaves room for one pooled only
    [2, 4, 1, 2, 0, 0], // max leaves room for min
    [2, 4, 0, 0, 2, 0], // empty pool: fill to min
  ])(
    'should give create=%#… when min=%i max=%i claimed=%i pooled=%i',
    (min, max, claimed, pooled, create, del) => {
      expect(poolDelta(min, max, claimed, pooled)).toEqual({ create, delete: del });
    },
  );

  it('should never plan a pool past max when claims already reach it', () => {
    expect(poolDelta(3, 2, 5, 1)).toEqual({ create: 0, delete: 1 });
  });
});

describe('refill rules', () => {
  it('should refill after a claim when the pool drops under min and max allows', () => {
    expect(shouldRefillAfterClaim(2, 0, 2, 5)).toBe(true);
    expect(shouldRefillAfterClaim(2, 4, 2, 4)).toBe(false);
    expect(shouldRefillAfterClaim(1, 0, 3, 3)).toBe(false);
  });

  it('should refill after a delete when the pool is under min and max allows', () => {
    expect(shouldRefillAfterDelete(2, 0, 1, 3)).toBe(true);
    expect(shouldRefillAfterDelete(2, 3, 1, 4)).toBe(false);
    expect(shouldRefillAfterDelete(2, 0, 2, 3)).toBe(false);
  });
});

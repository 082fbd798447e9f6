import { describe, expect, it } from 'vitest';
import { T0 } from '../support/builders';
import { FixedClock } from '../support/fakes/fixed-clock';

describe('FixedClock', () => {
  describe('now', () => {
    it('should return T0 when built without a start', () => {
      expect(new FixedClock().now()).toEqual(T0);
    });

    it('should not move when the caller mutates the returned Date', () => {
      const clock = new FixedClock();
      clock.now().setTime(0);
      expect(clock.now()).toEqual(T0);
    });
  });

  describe('advance', () => {
    it('should move the clock forward by the given milliseconds', () => {
      const clock = new FixedClock(new Date('2026-01-01T00:00:00Z'));
      clock.advance(90_000);
      expect(clock.now().toISOString()).toBe('2026-01-01T00:01:30.000Z');
    });
  });

  describe('set', () => {
    it('should jump to the given date', () => {
      const clock = new FixedClock();
      const later = new Date('2030-01-01T00:00:00Z');
      clock.set(later);
      later.setTime(0);
      expect(clock.now().toISOString()).toBe('2030-01-01T00:00:00.000Z');
    });
  });
});

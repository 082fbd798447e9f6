import { describe, expect, it } from 'vitest';
import { parseGoDuration, parseProtojsonDuration } from './duration';

describe('parseGoDuration', () => {
  it.each([
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['1.1s', 1_100],
    ['0.5ms', 0.5],
  ])('should read %s as %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  it.each(['', '10', '-5s', '5d', '1.s', '1h 30m', '10us'])('should refuse %j', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});

describe('parseProtojsonDuration', () => {
  it('should read decimal seconds exactly and drop sub-millisecond digits', () => {
    expect(parseProtojsonDuration('1.001s')).toBe(1_001);
    expect(parseProtojsonDuration('0.000999999s')).toBe(0);
    expect(parseProtojsonDuration('-2.5s')).toBe(-2_500);
  });

  it('should refuse the Go forms protojson does not have', () => {
    for (const text of ['1m30s', '1s1s', '500ms']) {
      expect(parseProtojsonDuration(text)).toBeUndefined();
    }
  });
});

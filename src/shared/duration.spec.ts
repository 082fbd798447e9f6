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
  it.each([
    ['600s', 600_000],
    ['1.001s', 1_001],
    ['1.500000001s', 1_500],
    ['0.000999999s', 0],
    ['-2.5s', -2_500],
  ])('should read %s as %d ms, dropping sub-millisecond digits', (text, ms) => {
    expect(parseProtojsonDuration(text)).toBe(ms);
  });

  it.each(['10m', '1m30s', '1s1s', '500ms', '+1s', '1.1234567890s', '600', ''])(
    'should refuse %j',
    (text) => {
      expect(parseProtojsonDuration(text)).toBeUndefined();
    },
  );
});

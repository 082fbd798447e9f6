import { describe, expect, it } from 'vitest';
import { MAX_TIMESTAMP_MS, computeUntil, untilOverflows } from './challenge';

const NOW = new Date('2026-01-01T00:00:00.000Z');
/** The longest timeout whose until a Timestamp still carries, from NOW. */
const LONGEST = MAX_TIMESTAMP_MS - NOW.getTime();

describe('MAX_TIMESTAMP_MS', () => {
  it('should be the last millisecond a google.protobuf.Timestamp can carry', () => {
    expect(new Date(MAX_TIMESTAMP_MS).toISOString()).toBe('9999-12-31T23:59:59.999Z');
  });
});

describe('untilOverflows', () => {
  it.each([
    ['no timeout and no until', {}, false],
    ['the longest timeout', { timeoutMs: LONGEST }, false],
    ['one millisecond more', { timeoutMs: LONGEST + 1 }, true],
    ["protobuf's longest Duration (10 000 years)", { timeoutMs: 315_576_000_000_000 }, true],
    [
      'that timeout with an until before it',
      { timeoutMs: 315_576_000_000_000, until: new Date('2030-01-01T00:00:00Z') },
      false,
    ],
  ])('should say whether the until overflows with %s', (_case, challenge, expected) => {
    expect(untilOverflows(challenge, NOW)).toBe(expected);
  });
});

describe('computeUntil', () => {
  it('should give now + timeout up to the last Timestamp', () => {
    expect(computeUntil({ timeoutMs: LONGEST }, NOW)?.getTime()).toBe(MAX_TIMESTAMP_MS);
  });

  it('should stop at the last Timestamp when a recorded timeout goes past it', () => {
    // A record stored with timeout "315576000000s" before timeouts were checked: year 12027.
    expect(computeUntil({ timeoutMs: 315_576_000_000_000 }, NOW)?.toISOString()).toBe(
      '9999-12-31T23:59:59.999Z',
    );
  });
});

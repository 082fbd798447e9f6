import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors';
import {
  camelToSnake,
  decodeJsonMessage,
  durationFromGrpc,
  durationToGrpc,
  formatDuration,
  formatTimestamp,
  json,
  parseDuration,
  parseFieldMask,
  parseInt64,
  parseTimestamp,
  requireAdditional,
  requireId,
  requireMaxBytes,
  requirePositiveDuration,
  timestampFromGrpc,
  timestampToGrpc,
} from './protojson';

describe('protojson Duration', () => {
  it.each([
    [600_000, '600s'],
    [1_500, '1.500s'],
    [1, '0.001s'],
    [0, '0s'],
    [-2_000, '-2s'],
  ])('should format %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([
    ['600s', 600_000],
    ['1.5s', 1_500],
    ['1.500000001s', 1_500],
    ['0.000000001s', 0],
    ['-2s', -2_000],
  ])('should parse %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['600', '10m', ' 600s', '1.5 s', '1.1234567890s', '+1s', ''])(
    'should refuse %j',
    (text) => {
      expect(parseDuration(text)).toHaveProperty('problem');
    },
  );

  it('should round-trip through the proto-loader object', () => {
    expect(durationToGrpc(1_500)).toEqual({ seconds: '1', nanos: 500_000_000 });
    expect(durationFromGrpc({ seconds: '600', nanos: 0 })).toBe(600_000);
    expect(durationFromGrpc({ seconds: '1', nanos: -1 })).toHaveProperty('problem');
  });
});

describe('protojson Timestamp', () => {
  it('should format whole seconds without fractional digits', () => {
    expect(formatTimestamp(new Date('2026-05-01T10:00:00.000Z'))).toBe('2026-05-01T10:00:00Z');
  });

  it('should format milliseconds with three fractional digits', () => {
    expect(formatTimestamp(new Date('2026-05-01T10:00:00.120Z'))).toBe('2026-05-01T10:00:00.120Z');
  });

  it('should parse UTC, offsets and nanoseconds to the millisecond', () => {
    expect(parseTimestamp('2026-05-01T10:00:00Z')).toEqual(new Date('2026-05-01T10:00:00Z'));
    expect(parseTimestamp('2026-05-01T12:00:00+02:00')).toEqual(new Date('2026-05-01T10:00:00Z'));
    expect(parseTimestamp('2026-05-01T10:00:00.123456789Z')).toEqual(
      new Date('2026-05-01T10:00:00.123Z'),
    );
  });

  it.each([
    '2026-05-01',
    '2026-02-30T10:00:00Z',
    '2026-05-01 10:00:00Z',
    '2026-05-01T10:00:00',
    'now',
  ])('should refuse %j', (text) => {
    expect(parseTimestamp(text)).toHaveProperty('problem');
  });

  it('should round-trip through the proto-loader object', () => {
    const date = new Date('2026-05-01T10:00:00.250Z');
    expect(timestampToGrpc(date)).toEqual({ seconds: '1777629600', nanos: 250_000_000 });
    expect(timestampFromGrpc(timestampToGrpc(date))).toEqual(date);
    expect(timestampFromGrpc({ seconds: '0', nanos: 1_000_000_000 })).toHaveProperty('problem');
  });
});

describe('protojson int64', () => {
  it('should accept numbers and decimal strings', () => {
    expect(parseInt64(3)).toBe(3);
    expect(parseInt64('3')).toBe(3);
    expect(parseInt64('-4')).toBe(-4);
  });

  it.each([1.5, '1.5', 'abc', '', true, '9007199254740993'])('should refuse %j', (v) => {
    expect(parseInt64(v)).toHaveProperty('problem');
  });
});

describe('protojson FieldMask', () => {
  it('should split camelCase paths and return proto names', () => {
    expect(parseFieldMask('timeout,until')).toEqual(['timeout', 'until']);
    expect(parseFieldMask('updateStrategy')).toEqual(['update_strategy']);
  });

  it('should read an empty string as the empty mask', () => {
    expect(parseFieldMask('')).toEqual([]);
  });

  it.each(['update_strategy', 'timeout, until', 'Timeout', 'timeout,,until'])(
    'should refuse %j',
    (text) => {
      expect(parseFieldMask(text)).toHaveProperty('problem');
    },
  );
});

describe('decodeJsonMessage', () => {
  const fields = { challengeId: json.string, min: json.int64, additional: json.stringMap };

  it('should accept lowerCamelCase and snake_case names', () => {
    expect(decodeJsonMessage({ challengeId: 'a' }, fields)).toEqual({ challengeId: 'a' });
    expect(decodeJsonMessage({ challenge_id: 'a' }, fields)).toEqual({ challengeId: 'a' });
  });

  it('should ignore unknown fields and treat null as unset', () => {
    expect(decodeJsonMessage({ nope: 1, min: null }, fields)).toEqual({});
  });

  it('should read an absent body as the empty message', () => {
    expect(decodeJsonMessage(undefined, fields)).toEqual({});
  });

  it('should name the field when its value has the wrong type', () => {
    expect(() => decodeJsonMessage({ challengeId: 5 }, fields)).toThrow(
      new InvalidArgumentError('challengeId', 'must be a string'),
    );
    expect(() => decodeJsonMessage({ additional: { a: 1 } }, fields)).toThrow(/invalid additional/);
  });

  it('should refuse a field given under both names', () => {
    expect(() => decodeJsonMessage({ challengeId: 'a', challenge_id: 'b' }, fields)).toThrow(
      /given twice/,
    );
  });

  it('should refuse a body that is not an object', () => {
    expect(() => decodeJsonMessage([1], fields)).toThrow(/invalid body/);
  });

  it('should convert names as protoc does', () => {
    expect(camelToSnake('lastRenew')).toBe('last_renew');
  });
});

describe('input rules', () => {
  it('should refuse empty ids', () => {
    expect(() => requireId('id', '')).toThrow(new InvalidArgumentError('id', 'must not be empty'));
    expect(requireId('id', 'x')).toBe('x');
  });

  it('should refuse zero or negative durations', () => {
    expect(() => requirePositiveDuration('timeout', 0)).toThrow(/invalid timeout/);
    expect(() => requirePositiveDuration('timeout', -1)).toThrow(/invalid timeout/);
    expect(requirePositiveDuration('timeout', undefined)).toBeUndefined();
  });

  it('should accept ids up to 256 bytes and refuse longer ones without echoing them', () => {
    expect(requireId('id', 'x'.repeat(256))).toBe('x'.repeat(256));
    // 128 two-byte characters are 256 bytes; one more character is over.
    expect(requireId('sourceId', 'é'.repeat(128))).toBe('é'.repeat(128));
    expect(() => requireId('sourceId', 'é'.repeat(128) + 'x')).toThrow(
      new InvalidArgumentError('sourceId', 'must be at most 256 bytes'),
    );
    expect(() => requireId('challengeId', 'x'.repeat(32 * 1024))).toThrow(
      new InvalidArgumentError('challengeId', 'must be at most 256 bytes'),
    );
  });

  it('should refuse a string over its limit naming the field', () => {
    expect(requireMaxBytes('scenario', 'r'.repeat(1024), 1024)).toBe('r'.repeat(1024));
    expect(() => requireMaxBytes('scenario', 'r'.repeat(1025), 1024)).toThrow(
      new InvalidArgumentError('scenario', 'must be at most 1024 bytes'),
    );
  });

  it('should accept an additional map up to its limits and copy it', () => {
    const map = { ['k'.repeat(256)]: 'v'.repeat(32 * 1024 - 256) };
    const copy = requireAdditional('additional', map);
    expect(copy).toEqual(map);
    expect(copy).not.toBe(map);
    expect(requireAdditional('additional', undefined)).toEqual({});
  });

  it.each([
    ['a key over 256 bytes', { ['k'.repeat(257)]: 'v' }, 'keys must be at most 256 bytes'],
    [
      'keys and values over 32 KiB together',
      { a: 'v'.repeat(16 * 1024), b: 'v'.repeat(16 * 1024) },
      'keys and values together must be at most 32768 bytes',
    ],
  ])('should refuse an additional map with %s', (_case, map, problem) => {
    expect(() => requireAdditional('additional', map)).toThrow(
      new InvalidArgumentError('additional', problem),
    );
  });
});

import { describe, expect, it } from 'vitest';
import type { Instance } from '../../shared/domain';
import {
  createInstanceFromGrpc,
  createInstanceFromJson,
  instanceKeyFromGrpc,
  instanceKeyFromPath,
  instanceToGrpc,
  instanceToJson,
  querySourceFromGrpc,
  querySourceFromQuery,
  renewKeyFromJson,
} from './instance.wire';

const instance = (over: Partial<Instance> = {}): Instance => ({
  challengeId: 'c',
  identity: '0123456789abcdef',
  sourceId: 's',
  since: new Date('2026-05-01T10:00:00Z'),
  lastRenew: new Date('2026-05-01T10:05:00.5Z'),
  until: new Date('2026-05-01T10:15:00Z'),
  connectionInfo: 'nc host 1337',
  flags: ['FLAG{x}'],
  additional: { k: 'v' },
  ...over,
});

describe('instanceToJson', () => {
  it('should write every field in upstream order with flag when there is one flag', () => {
    expect(JSON.stringify(instanceToJson(instance()))).toBe(
      '{"challengeId":"c","sourceId":"s","since":"2026-05-01T10:00:00Z","lastRenew":"2026-05-01T10:05:00.500Z","until":"2026-05-01T10:15:00Z","connectionInfo":"nc host 1337","flag":"FLAG{x}","flags":["FLAG{x}"],"additional":{"k":"v"}}',
    );
  });

  it('should omit flag when there are two flags and until when it never expires', () => {
    const json = instanceToJson(instance({ flags: ['a', 'b'], until: undefined }));
    expect(json).not.toHaveProperty('flag');
    expect(json).not.toHaveProperty('until');
    expect(json.flags).toEqual(['a', 'b']);
  });

  it('should emit empty flags and additional when there are none', () => {
    const json = instanceToJson(instance({ flags: [], additional: {} }));
    expect(json).toMatchObject({ flags: [], additional: {} });
    expect(json).not.toHaveProperty('flag');
  });
});

describe('instanceToGrpc', () => {
  it('should use Timestamp objects and leave unset optionals undefined', () => {
    const grpc = instanceToGrpc(instance({ until: undefined, flags: [] }));
    expect(grpc.since).toEqual({ seconds: '1777629600', nanos: 0 });
    expect(grpc.lastRenew).toEqual({ seconds: '1777629900', nanos: 500_000_000 });
    expect(grpc).not.toHaveProperty('until');
    expect(grpc).not.toHaveProperty('flag');
  });
});

describe('REST requests', () => {
  it('should read camelCase and snake_case create bodies and ignore unknown fields', () => {
    const expected = { challengeId: 'c', sourceId: 's', additional: {} };
    expect(createInstanceFromJson({ challengeId: 'c', sourceId: 's', extra: 1 })).toEqual(expected);
    expect(createInstanceFromJson({ challenge_id: 'c', source_id: 's' })).toEqual(expected);
  });

  it('should name the missing id', () => {
    expect(() => createInstanceFromJson({ challengeId: 'c' })).toThrow(/^invalid sourceId:/);
    expect(() => instanceKeyFromPath('', 's')).toThrow(/^invalid challengeId:/);
  });

  it('should accept an empty renew body and let the path win', () => {
    expect(renewKeyFromJson('c', 's', undefined)).toEqual({ challengeId: 'c', sourceId: 's' });
    expect(renewKeyFromJson('c', 's', {})).toEqual({ challengeId: 'c', sourceId: 's' });
    expect(renewKeyFromJson('c', 's', { challengeId: 'x' })).toEqual({
      challengeId: 'c',
      sourceId: 's',
    });
    expect(() => renewKeyFromJson('c', 's', { sourceId: 3 })).toThrow(/^invalid sourceId:/);
  });

  it('should read the source from sourceId or source_id', () => {
    expect(querySourceFromQuery({ sourceId: 'a' })).toBe('a');
    expect(querySourceFromQuery({ source_id: 'b' })).toBe('b');
    expect(() => querySourceFromQuery({})).toThrow(/^invalid sourceId:/);
  });
});

describe('gRPC requests', () => {
  it('should map proto-loader requests and refuse empty ids', () => {
    expect(
      createInstanceFromGrpc({ challengeId: 'c', sourceId: 's', additional: { a: 'b' } }),
    ).toEqual({ challengeId: 'c', sourceId: 's', additional: { a: 'b' } });
    expect(instanceKeyFromGrpc({ challengeId: 'c', sourceId: 's' })).toEqual({
      challengeId: 'c',
      sourceId: 's',
    });
    expect(() => querySourceFromGrpc({ sourceId: '' })).toThrow(/^invalid sourceId:/);
  });
});

describe('input limits', () => {
  const long = 'x'.repeat(32 * 1024);
  const refused = (field: string): Error =>
    expect.objectContaining({ reason: 'INVALID_ARGUMENT', field }) as Error;

  it.each([
    ['challengeId', { challengeId: long, sourceId: 's' }],
    ['sourceId', { challengeId: 'c', sourceId: long }],
    ['additional', { challengeId: 'c', sourceId: 's', additional: { k: long, l: long } }],
  ])('should refuse an oversized %s when creating on both transports', (field, req) => {
    expect(() => createInstanceFromJson(req)).toThrow(refused(field));
    expect(() => createInstanceFromGrpc({ additional: {}, ...req })).toThrow(refused(field));
  });

  it('should refuse oversized ids in paths, queries and gRPC keys', () => {
    expect(() => instanceKeyFromPath(long, 's')).toThrow(refused('challengeId'));
    expect(() => renewKeyFromJson('c', long, {})).toThrow(refused('sourceId'));
    expect(() => instanceKeyFromGrpc({ challengeId: 'c', sourceId: long })).toThrow(
      refused('sourceId'),
    );
    expect(() => querySourceFromQuery({ sourceId: long })).toThrow(refused('sourceId'));
    expect(() => querySourceFromGrpc({ sourceId: long })).toThrow(refused('sourceId'));
  });
});

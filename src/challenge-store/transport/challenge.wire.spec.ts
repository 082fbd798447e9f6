import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, InvalidUpdateMaskError } from '../../shared/errors';
import type {
  CreateChallengeRequestGrpc,
  UpdateChallengeRequestGrpc,
} from '../../shared/transport/api-messages.generated';
import type { ChallengeView } from '../challenge-store.types';
import {
  challengeIdFromGrpc,
  challengeToGrpc,
  challengeToJson,
  createChallengeFromGrpc,
  createChallengeFromJson,
  updateChallengeFromGrpc,
  updateChallengeFromJson,
} from './challenge.wire';

const since = new Date('2026-05-01T10:00:00.123Z');

/** gRPC requests as proto-loader decodes them: every field with its default, but `over`. */
const createReq = (over: Partial<CreateChallengeRequestGrpc>): CreateChallengeRequestGrpc => ({
  id: '',
  scenario: '',
  timeout: null,
  until: null,
  additional: {},
  min: '0',
  max: '0',
  ...over,
});
const updateReq = (over: Partial<UpdateChallengeRequestGrpc>): UpdateChallengeRequestGrpc => ({
  id: '',
  timeout: null,
  until: null,
  updateMask: null,
  additional: {},
  min: '0',
  max: '0',
  ...over,
});

const view = (over: Partial<ChallengeView> = {}): ChallengeView => ({
  id: '1',
  scenario: 'registry:5000/examples/deploy:v1',
  additional: {},
  min: 0,
  max: 0,
  instances: [],
  ...over,
});

describe('challengeToJson', () => {
  it('should emit unset timeout and until as null and int64 as strings', () => {
    expect(JSON.stringify(challengeToJson(view()))).toBe(
      '{"id":"1","scenario":"registry:5000/examples/deploy:v1","timeout":null,"until":null,"instances":[],"additional":{},"min":"0","max":"0"}',
    );
  });

  it('should write the upstream example challenge', () => {
    const json = challengeToJson(
      view({
        timeoutMs: 600_000,
        instances: [
          {
            challengeId: '1',
            identity: '0123456789abcdef',
            sourceId: '7',
            since,
            lastRenew: since,
            until: new Date('2026-05-01T10:10:00.123Z'),
            connectionInfo: 'curl http://...',
            flags: ['FLAG{x}'],
            additional: {},
          },
        ],
      }),
    );
    expect(json).toEqual(
      JSON.parse(`{"id":"1","scenario":"registry:5000/examples/deploy:v1","timeout":"600s","until":null,
 "instances":[{"challengeId":"1","sourceId":"7","since":"2026-05-01T10:00:00.123Z",
   "lastRenew":"2026-05-01T10:00:00.123Z","until":"2026-05-01T10:10:00.123Z",
   "connectionInfo":"curl http://...","flag":"FLAG{x}","flags":["FLAG{x}"],"additional":{}}],
 "additional":{},"min":"0","max":"0"}`),
    );
    expect(json.instances[0]).not.toHaveProperty('identity');
  });

  it('should omit flag and until of an instance when it has two flags and no expiry', () => {
    const json = challengeToJson(
      view({
        instances: [
          {
            challengeId: '1',
            identity: '0123456789abcdef',
            sourceId: '7',
            since,
            lastRenew: since,
            connectionInfo: '',
            flags: ['a', 'b'],
            additional: { k: 'v' },
          },
        ],
      }),
    );
    expect(json.instances[0]).not.toHaveProperty('flag');
    expect(json.instances[0]).not.toHaveProperty('until');
    expect(json.instances[0]?.flags).toEqual(['a', 'b']);
  });

  it('should write until and min/max when set', () => {
    const json = challengeToJson(view({ until: new Date('2026-06-01T00:00:00Z'), min: 2, max: 5 }));
    expect(json).toMatchObject({ until: '2026-06-01T00:00:00Z', min: '2', max: '5' });
  });
});

describe('challengeToGrpc', () => {
  it('should use proto-loader objects with null for unset messages', () => {
    expect(challengeToGrpc(view({ timeoutMs: 1_500 }))).toEqual({
      id: '1',
      scenario: 'registry:5000/examples/deploy:v1',
      timeout: { seconds: '1', nanos: 500_000_000 },
      until: null,
      instances: [],
      additional: {},
      min: '0',
      max: '0',
    });
  });
});

describe('createChallengeFromJson', () => {
  it('should read the CTFd plugin body and ignore updateStrategy', () => {
    expect(
      createChallengeFromJson(
        JSON.parse(
          '{"id":"3","scenario":"r/s:1","additional":{"a":"b"},"until":"2026-06-01T00:00:00Z","timeout":"600s","min":1,"max":"4","updateStrategy":"recreate"}',
        ),
      ),
    ).toEqual({
      id: '3',
      scenario: 'r/s:1',
      timeoutMs: 600_000,
      until: new Date('2026-06-01T00:00:00Z'),
      additional: { a: 'b' },
      min: 1,
      max: 4,
    });
  });

  it('should read null timeout and until as unset and fill defaults', () => {
    expect(
      createChallengeFromJson(
        JSON.parse('{"id":"3","scenario":"r/s:1","until":null,"timeout":null}'),
      ),
    ).toEqual({ id: '3', scenario: 'r/s:1', additional: {}, min: 0, max: 0 });
  });

  it('should accept snake_case names', () => {
    const input = createChallengeFromJson({ id: '3', scenario: 's', additional: { x: 'y' } });
    expect(input.additional).toEqual({ x: 'y' });
  });

  it('should pass negative bounds to the service, which owns that rule', () => {
    expect(createChallengeFromJson({ id: '3', min: -1, max: '-2' })).toMatchObject({
      min: -1,
      max: -2,
    });
  });

  it.each([
    [{ scenario: 's' }, 'id'],
    [{ id: '' }, 'id'],
    [{ id: 'x', timeout: '0s' }, 'timeout'],
    [{ id: 'x', timeout: '-5s' }, 'timeout'],
    [{ id: 'x', timeout: 600 }, 'timeout'],
    [{ id: 'x', until: 'tomorrow' }, 'until'],
    [{ id: 'x', min: 1.5 }, 'min'],
    [{ id: 'x', max: 'many' }, 'max'],
    [{ id: 1 }, 'id'],
    [{ id: 'x', additional: ['a'] }, 'additional'],
  ])('should refuse %j naming %s', (body, field) => {
    expect(() => createChallengeFromJson(body)).toThrow(InvalidArgumentError);
    expect(() => createChallengeFromJson(body)).toThrow(new RegExp(`^invalid ${field}:`));
  });
});

describe('updateChallengeFromJson', () => {
  it('should read updateMask into the service mask and let the path id win', () => {
    const input = updateChallengeFromJson(
      '7',
      JSON.parse('{"id":"other","timeout":"1.5s","until":null,"updateMask":"timeout,until"}'),
    );
    expect(input).toEqual({
      id: '7',
      mask: new Set(['timeout', 'until']),
      updateStrategy: 'update_in_place',
      timeoutMs: 1_500,
      additional: {},
      min: 0,
      max: 0,
    });
  });

  it('should leave the mask undefined when none is sent', () => {
    expect(updateChallengeFromJson('7', {}).mask).toBeUndefined();
    expect(updateChallengeFromJson('7', undefined).mask).toBeUndefined();
  });

  it('should read an empty updateMask as an empty mask', () => {
    expect(updateChallengeFromJson('7', { updateMask: '' }).mask).toEqual(new Set());
  });

  it('should accept valid paths that the service does not apply', () => {
    const input = updateChallengeFromJson('7', { updateMask: 'updateStrategy,id,scenario' });
    expect(input.mask).toEqual(new Set(['scenario']));
  });

  it('should read the update strategy by name or number', () => {
    expect(updateChallengeFromJson('7', { updateStrategy: 'blue_green' }).updateStrategy).toBe(
      'blue_green',
    );
    expect(updateChallengeFromJson('7', { update_strategy: 2 }).updateStrategy).toBe('recreate');
    expect(() => updateChallengeFromJson('7', { updateStrategy: 'yolo' })).toThrow(
      /invalid updateStrategy/,
    );
  });

  it('should keep an explicitly given scenario, even empty', () => {
    expect(updateChallengeFromJson('7', { scenario: '' }).scenario).toBe('');
    expect(updateChallengeFromJson('7', {})).not.toHaveProperty('scenario');
  });

  it('should refuse underscores and spaces in the mask as invalid updateMask', () => {
    expect(() => updateChallengeFromJson('7', { updateMask: 'update_strategy' })).toThrow(
      /^invalid updateMask:/,
    );
    expect(() => updateChallengeFromJson('7', { updateMask: 'timeout, until' })).toThrow(
      /^invalid updateMask:/,
    );
  });

  it('should refuse unknown paths with the upstream mask error', () => {
    expect(() => updateChallengeFromJson('7', { updateMask: 'timeout,nope' })).toThrow(
      InvalidUpdateMaskError,
    );
  });

  it('should refuse an empty path id', () => {
    expect(() => updateChallengeFromJson('', {})).toThrow(/^invalid id:/);
  });
});

describe('gRPC requests', () => {
  it('should map a proto-loader CreateChallengeRequest', () => {
    expect(
      createChallengeFromGrpc({
        id: 'c',
        scenario: 's',
        timeout: { seconds: '600', nanos: 0 },
        until: null,
        additional: { a: 'b' },
        min: '1',
        max: '0',
      }),
    ).toEqual({
      id: 'c',
      scenario: 's',
      timeoutMs: 600_000,
      additional: { a: 'b' },
      min: 1,
      max: 0,
    });
  });

  it('should map a proto-loader UpdateChallengeRequest with snake_case mask paths', () => {
    expect(
      updateChallengeFromGrpc({
        id: 'c',
        scenario: 's2',
        updateStrategy: 'recreate',
        timeout: null,
        until: { seconds: '1777629600', nanos: 0 },
        updateMask: { paths: ['until', 'update_strategy', 'scenario'] },
        additional: {},
        min: '0',
        max: '0',
      }),
    ).toEqual({
      id: 'c',
      mask: new Set(['until', 'scenario']),
      scenario: 's2',
      updateStrategy: 'recreate',
      until: new Date('2026-05-01T10:00:00Z'),
      additional: {},
      min: 0,
      max: 0,
    });
  });

  it('should leave the mask undefined and the scenario unset when absent', () => {
    const input = updateChallengeFromGrpc(updateReq({ id: 'c' }));
    expect(input.mask).toBeUndefined();
    expect(input).not.toHaveProperty('scenario');
    expect(input.updateStrategy).toBe('update_in_place');
  });

  it('should refuse unknown mask paths, empty ids and non-positive durations', () => {
    expect(() =>
      updateChallengeFromGrpc(
        updateReq({ id: 'c', scenario: 's', updateMask: { paths: ['updateMask'] } }),
      ),
    ).toThrow(InvalidUpdateMaskError);
    expect(() => challengeIdFromGrpc({ id: '' })).toThrow(/^invalid id:/);
    expect(() =>
      createChallengeFromGrpc(
        createReq({ id: 'c', scenario: 's', timeout: { seconds: '0', nanos: 0 } }),
      ),
    ).toThrow(/^invalid timeout:/);
  });
});

describe('input limits', () => {
  const long = 'x'.repeat(32 * 1024);
  const ok = { id: 'c', scenario: 'registry:5000/examples/deploy:v1' };
  it.each([
    ['id', { ...ok, id: long }],
    ['scenario', { ...ok, scenario: `registry:5000/${'a'.repeat(1024)}:v1` }],
    ['additional', { ...ok, additional: { [long]: 'v' } }],
    ['additional', { ...ok, additional: { k: long, l: long } }],
  ])('should refuse an oversized %s on both transports', (field, req) => {
    const refused = expect.objectContaining({ reason: 'INVALID_ARGUMENT', field }) as Error;
    expect(() => createChallengeFromJson(req)).toThrow(refused);
    expect(() => createChallengeFromGrpc(createReq(req))).toThrow(refused);
    const update = { ...req, updateMask: field === 'id' ? 'scenario' : field };
    expect(() => updateChallengeFromJson(req.id, update)).toThrow(refused);
    expect(() =>
      updateChallengeFromGrpc(updateReq({ ...req, updateMask: { paths: [update.updateMask] } })),
    ).toThrow(refused);
  });

  it('should refuse an oversized path id', () => {
    expect(() => challengeIdFromGrpc({ id: long })).toThrow(
      new InvalidArgumentError('id', 'must be at most 256 bytes'),
    );
  });
});

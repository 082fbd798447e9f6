import {
  status as GrpcStatus,
  type CallOptions,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { MAX_ID_BYTES } from '../../src/shared/transport/protojson';
import type { RpcStatusJson } from '../../src/shared/transport/rpc-status';
import {
  bootApiApp,
  grpcError,
  grpcStatusOf,
  jsonInit,
  ndjson,
  type ApiApp,
} from '../support/api-app';
import { outputsOnlyScenario } from '../support/api-scenarios';
import { orasPush } from '../support/oras';
import { scenarioOf } from '../support/scenarios';
import { freePort } from '../support/services';

/**
 * Every error of upstream's error table the API can produce, on both transports against the real service:
 * gRPC code and message, REST HTTP status and body, and the same google.rpc.Status (ErrorInfo
 * reason, domain, metadata, other details) on both. Then malformed input: INVALID_ARGUMENT naming
 * the field, and nothing changed.
 */

const DOMAIN = 'github.com/ctfer-io/chall-manager';
const OCI_DOMAIN = `${DOMAIN}/OCI`;
const T = 'type.googleapis.com/google.rpc.';

const errorInfo = (
  reason: string,
  metadata: Record<string, string>,
  domain = DOMAIN,
): Record<string, unknown> => ({ '@type': `${T}ErrorInfo`, reason, domain, metadata });
const resourceInfo = (
  resourceType: string,
  resourceName: string,
  description: unknown,
): Record<string, unknown> => ({
  '@type': `${T}ResourceInfo`,
  resourceType,
  resourceName,
  owner: '',
  description,
});
const precondition = (type: string, subject: string, description: string): unknown => ({
  '@type': `${T}PreconditionFailure`,
  violations: [{ type, subject, description }],
});
const badRequest = (...violations: [field: string, reason: string, description: unknown][]) => ({
  '@type': `${T}BadRequest`,
  fieldViolations: violations.map(([field, reason, description]) => ({
    field,
    description,
    reason,
    localizedMessage: null,
  })),
});

/** What both transports must answer. */
interface Expected {
  code: number;
  http: number;
  message: string;
  details: unknown[];
}

let svc: ApiApp;
let scenario: string;
let noPulumiYaml: string;
let registry: string;

const rest = (method: string, path: string, body?: unknown): Promise<Response> =>
  svc.rest(path, jsonInit(method, body));
const challengeRpc = (method: string, req: object): Promise<unknown> =>
  svc.grpc.unary(svc.grpc.challenge, method)(req);
const instanceRpc = (method: string, req: object): Promise<unknown> =>
  svc.grpc.unary(svc.grpc.instance, method)(req);

async function restStatus(res: Response, expected: Expected): Promise<RpcStatusJson> {
  const text = await res.text();
  expect(res.status, text).toBe(expected.http);
  const body = JSON.parse(text) as RpcStatusJson;
  expect(body).toEqual({
    code: expected.code,
    message: expected.message,
    details: expected.details,
  });
  return body;
}

async function grpcStatus(call: Promise<unknown>, expected: Expected): Promise<RpcStatusJson> {
  const err = await grpcError(call);
  expect(err.code).toBe(expected.code);
  expect(err.details).toBe(expected.message);
  const status = grpcStatusOf(err);
  expect(status).toEqual({
    code: expected.code,
    message: expected.message,
    details: expected.details,
  });
  return status ?? { code: -1, message: '', details: [] };
}

/** The same error on both transports, with the very same google.rpc.Status. */
async function expectBoth(
  restCall: () => Promise<Response>,
  grpcCall: () => Promise<unknown>,
  expected: Expected,
): Promise<void> {
  const fromRest = await restStatus(await restCall(), expected);
  const fromGrpc = await grpcStatus(grpcCall(), expected);
  expect(fromRest).toEqual(fromGrpc);
}

/** What a client and the disk show of the challenges. */
async function snapshot(): Promise<{ dirs: string[]; rest: string[]; grpc: string[] }> {
  const root = join(svc.dir, 'chall');
  const dirs = existsSync(root) ? readdirSync(root).sort() : [];
  const restIds = (await ndjson(await svc.rest('/api/v1/challenge')))
    .map((l) => (l.result as { id: string }).id)
    .sort();
  const grpcIds = (await svc.grpc.stream(svc.grpc.challenge, 'QueryChallenge')({}))
    .map((c) => c.id as string)
    .sort();
  return { dirs, rest: restIds, grpc: grpcIds };
}

/** Runs `work`, then checks nothing changed and `attempted` (a challenge id) does not exist. */
async function expectNoStateChange(work: () => Promise<void>, attempted?: string): Promise<void> {
  const before = await snapshot();
  await work();
  expect(await snapshot()).toEqual(before);
  if (attempted !== undefined) {
    expect((await rest('GET', `/api/v1/challenge/${attempted}`)).status).toBe(404);
    await expect(challengeRpc('RetrieveChallenge', { id: attempted })).rejects.toMatchObject({
      code: GrpcStatus.NOT_FOUND,
    });
  }
}

const ID = 'errs';
const SOURCE = 's1';
/** The challenge's timeout: short, so its instance expires during the run. */
const TIMEOUT = '3s';
let instanceUntil: number;

beforeAll(async () => {
  svc = await bootApiApp({ JANITOR_TICKER: '0' });
  registry = inject('registry');
  scenario = await orasPush(
    registry,
    'errors/outputs-only:v1',
    scenarioOf(svc.scratch, 'outputs-only', outputsOnlyScenario()),
  );
  const withoutPulumiYaml = Object.fromEntries(
    Object.entries(outputsOnlyScenario()).filter(([path]) => path !== 'Pulumi.yaml'),
  );
  noPulumiYaml = await orasPush(
    registry,
    'errors/no-pulumi-yaml:v1',
    scenarioOf(svc.scratch, 'no-pulumi-yaml', withoutPulumiYaml),
  );
  const created = await rest('POST', '/api/v1/challenge', { id: ID, scenario, timeout: TIMEOUT });
  expect(created.status, await created.text()).toBe(200);
  const instance = await rest('POST', '/api/v1/instance', { challengeId: ID, sourceId: SOURCE });
  const body = (await instance.json()) as { until: string };
  expect(instance.status).toBe(200);
  instanceUntil = Date.parse(body.until);
});
afterAll(async () => {
  if (svc) await rest('DELETE', `/api/v1/challenge/${ID}`);
  await svc?.close();
});

describe('errors of the upstream error table on REST and gRPC', () => {
  it('should answer CHALLENGE_ALREADY_EXISTS when creating a challenge whose id is taken', async () => {
    await expectNoStateChange(() =>
      expectBoth(
        () => rest('POST', '/api/v1/challenge', { id: ID, scenario }),
        () => challengeRpc('CreateChallenge', { id: ID, scenario }),
        {
          code: 6,
          http: 409,
          message: 'Challenge already exists.',
          details: [
            errorInfo('CHALLENGE_ALREADY_EXISTS', { id: ID }),
            resourceInfo('Challenge', ID, 'A challenge with this ID already exists.'),
          ],
        },
      ),
    );
  });

  it.each([
    ['RetrieveChallenge', 'GET', undefined],
    ['UpdateChallenge', 'PATCH', { updateMask: 'timeout', timeout: '60s' }],
    ['DeleteChallenge', 'DELETE', undefined],
  ] as const)(
    'should answer CHALLENGE_NOT_FOUND when calling %s on an unknown challenge',
    async (method, verb, body) => {
      await expectNoStateChange(
        () =>
          expectBoth(
            () => rest(verb, '/api/v1/challenge/nope', body),
            () =>
              challengeRpc(method, {
                id: 'nope',
                ...(body && { updateMask: { paths: ['timeout'] }, timeout: { seconds: '60' } }),
              }),
            {
              code: 5,
              http: 404,
              message: 'Challenge not found.',
              details: [
                errorInfo('CHALLENGE_NOT_FOUND', { id: 'nope' }),
                resourceInfo('Challenge', 'nope', 'No challenge with this ID was found.'),
              ],
            },
          ),
        'nope',
      );
    },
  );

  it('should answer CHALLENGE_NOT_FOUND when creating an instance of an unknown challenge', async () => {
    await expectBoth(
      () => rest('POST', '/api/v1/instance', { challengeId: 'nope', sourceId: SOURCE }),
      () => instanceRpc('CreateInstance', { challengeId: 'nope', sourceId: SOURCE }),
      {
        code: 5,
        http: 404,
        message: 'Challenge not found.',
        details: [
          errorInfo('CHALLENGE_NOT_FOUND', { id: 'nope' }),
          resourceInfo('Challenge', 'nope', 'No challenge with this ID was found.'),
        ],
      },
    );
  });

  it('should answer INSTANCE_ALREADY_EXISTS when the source already has an instance', async () => {
    await expectBoth(
      () => rest('POST', '/api/v1/instance', { challengeId: ID, sourceId: SOURCE }),
      () => instanceRpc('CreateInstance', { challengeId: ID, sourceId: SOURCE }),
      {
        code: 6,
        http: 409,
        message: 'Instance already exists.',
        details: [
          errorInfo('INSTANCE_ALREADY_EXISTS', { challenge_id: ID, source_id: SOURCE }),
          resourceInfo('Instance', `${ID}/${SOURCE}`, 'An instance with this ID already exists.'),
        ],
      },
    );
    const listed = await ndjson(await svc.rest(`/api/v1/instance?sourceId=${SOURCE}`));
    expect(listed).toHaveLength(1);
  });

  it.each([
    ['RetrieveInstance', 'GET', ID],
    ['RenewInstance', 'PATCH', ID],
    ['DeleteInstance', 'DELETE', ID],
    ['RetrieveInstance', 'GET', 'nope'],
  ] as const)(
    'should answer INSTANCE_NOT_FOUND when calling %s for a source without instance of %s',
    async (method, verb, challengeId) => {
      await expectBoth(
        () =>
          rest(verb, `/api/v1/instance/${challengeId}/nobody`, verb === 'PATCH' ? {} : undefined),
        () => instanceRpc(method, { challengeId, sourceId: 'nobody' }),
        {
          code: 5,
          http: 404,
          message: 'Instance not found.',
          details: [
            errorInfo('INSTANCE_NOT_FOUND', { challenge_id: challengeId, source_id: 'nobody' }),
            resourceInfo(
              'Instance',
              `${challengeId}/nobody`,
              'No instance with this ID was found.',
            ),
          ],
        },
      );
    },
  );

  it('should answer INSTANCE_EXPIRED when renewing an instance past its until', async () => {
    await vi.waitFor(
      () => {
        if (!(Date.now() > instanceUntil)) throw new Error('the instance has not expired yet');
      },
      { timeout: 60_000, interval: 50 },
    );
    await expectBoth(
      () => rest('PATCH', `/api/v1/instance/${ID}/${SOURCE}`, {}),
      () => instanceRpc('RenewInstance', { challengeId: ID, sourceId: SOURCE }),
      {
        code: 9,
        http: 400,
        message: "Instance can't be renewed as it expired.",
        details: [
          errorInfo('INSTANCE_EXPIRED', { challenge_id: ID, source_id: SOURCE }),
          precondition(
            'EXPIRATION',
            `${DOMAIN}/Instance`,
            'Instance has expired so can no longer process renewal request.',
          ),
        ],
      },
    );
    // Still there (RetrieveInstance does not check expiry), and not renewed.
    const got = (await (await rest('GET', `/api/v1/instance/${ID}/${SOURCE}`)).json()) as {
      until: string;
    };
    expect(Date.parse(got.until)).toBe(instanceUntil);
  });

  it('should answer CHALLENGE_NO_RENEWAL when renewing and the challenge has no timeout', async () => {
    const cleared = await rest('PATCH', `/api/v1/challenge/${ID}`, {
      timeout: null,
      updateMask: 'timeout',
    });
    expect(cleared.status).toBe(200);
    expect(((await cleared.json()) as { timeout: unknown }).timeout).toBeNull();
    await expectBoth(
      () => rest('PATCH', `/api/v1/instance/${ID}/${SOURCE}`),
      () => instanceRpc('RenewInstance', { challengeId: ID, sourceId: SOURCE }),
      {
        code: 9,
        http: 400,
        message: 'Challenge does not accept renewal.',
        details: [
          errorInfo('CHALLENGE_NO_RENEWAL', { id: ID }),
          precondition(
            'RENEWAL',
            `${DOMAIN}/Challenge`,
            'Challenge has no timeout thus cannot be renewed.',
          ),
        ],
      },
    );
  });

  it('should answer CHALLENGE_EXPIRED when creating an instance after the challenge until', async () => {
    const expired = await rest('PATCH', `/api/v1/challenge/${ID}`, {
      until: '2000-01-01T00:00:00Z',
      updateMask: 'until',
    });
    expect(expired.status).toBe(200);
    await expectBoth(
      () => rest('POST', '/api/v1/instance', { challengeId: ID, sourceId: 's2' }),
      () => instanceRpc('CreateInstance', { challengeId: ID, sourceId: 's2' }),
      {
        code: 9,
        http: 400,
        message: 'Challenge has expired.',
        details: [
          errorInfo('CHALLENGE_EXPIRED', { id: ID }),
          precondition(
            'EXPIRATION',
            `${DOMAIN}/Challenge`,
            'Challenge has expired so can no longer process instance requests.',
          ),
        ],
      },
    );
    expect(await ndjson(await svc.rest('/api/v1/instance?sourceId=s2'))).toEqual([]);
  });

  const MIN_NEGATIVE = ['min', 'MUST_BE_POSITIVE', 'Minimum boundary must be a positive integer.'];
  const MAX_NEGATIVE = ['max', 'MUST_BE_POSITIVE', 'Maximum boundary must be a positive integer.'];
  const INVERTED = [
    'min',
    'INVERTED_BOUNDARIES',
    'When an upper bound is defined, minimum cannot exceed maximum.',
  ];

  it.each([
    ['min is negative', -1, 0, { min: '-1', max: '0' }, [MIN_NEGATIVE]],
    ['both are negative', -1, -2, { min: '-1', max: '-2' }, [MIN_NEGATIVE, MAX_NEGATIVE]],
    ['min exceeds max', 3, 2, { min: '3', max: '2' }, [INVERTED]],
  ] as const)(
    'should answer CHALLENGE_POOLER_OUT_OF_BOUNDS when creating a challenge whose %s',
    async (_case, min, max, metadata, violations) => {
      await expectNoStateChange(
        () =>
          expectBoth(
            () => rest('POST', '/api/v1/challenge', { id: 'pool', scenario, min, max }),
            () =>
              challengeRpc('CreateChallenge', {
                id: 'pool',
                scenario,
                min: String(min),
                max: String(max),
              }),
            {
              code: 3,
              http: 400,
              message: 'Pooler configuration out of bounds.',
              details: [
                errorInfo('CHALLENGE_POOLER_OUT_OF_BOUNDS', metadata),
                badRequest(...(violations as unknown as [string, string, string][])),
              ],
            },
          ),
        'pool',
      );
    },
  );

  it('should answer CHALLENGE_POOLER_OUT_OF_BOUNDS naming only the bound in the mask when updating', async () => {
    await expectNoStateChange(() =>
      expectBoth(
        () => rest('PATCH', `/api/v1/challenge/${ID}`, { max: -1, min: -5, updateMask: 'max' }),
        () =>
          challengeRpc('UpdateChallenge', {
            id: ID,
            max: '-1',
            min: '-5',
            updateMask: { paths: ['max'] },
          }),
        {
          code: 3,
          http: 400,
          message: 'Pooler configuration out of bounds.',
          details: [
            errorInfo('CHALLENGE_POOLER_OUT_OF_BOUNDS', { max: '-1' }),
            badRequest(MAX_NEGATIVE as unknown as [string, string, string]),
          ],
        },
      ),
    );
    const got = (await (await rest('GET', `/api/v1/challenge/${ID}`)).json()) as object;
    expect(got).toMatchObject({ min: '0', max: '0' });
  });

  it('should answer CHALLENGE_POOLER_OUT_OF_BOUNDS naming the largest pool when min exceeds POOL_MAX_SIZE', async () => {
    await expectNoStateChange(() =>
      expectBoth(
        () => rest('PATCH', `/api/v1/challenge/${ID}`, { min: 20000, updateMask: 'min' }),
        () =>
          challengeRpc('UpdateChallenge', { id: ID, min: '20000', updateMask: { paths: ['min'] } }),
        {
          code: 3,
          http: 400,
          message: 'Pooler configuration out of bounds.',
          details: [
            errorInfo('CHALLENGE_POOLER_OUT_OF_BOUNDS', { min: '20000' }),
            badRequest([
              'min',
              'TOO_LARGE',
              'Minimum boundary cannot exceed the largest pool allowed (100).',
            ]),
          ],
        },
      ),
    );
    const got = (await (await rest('GET', `/api/v1/challenge/${ID}`)).json()) as object;
    expect(got).toMatchObject({ min: '0', max: '0' });
  });

  it('should answer CHALLENGE_INVALID_UPDATE_MASK when the mask names an unknown path', async () => {
    await expectNoStateChange(() =>
      expectBoth(
        () => rest('PATCH', `/api/v1/challenge/${ID}`, { updateMask: 'nope,timeout' }),
        () =>
          challengeRpc('UpdateChallenge', { id: ID, updateMask: { paths: ['nope', 'timeout'] } }),
        {
          code: 3,
          http: 400,
          message: 'Invalid update mask.',
          details: [
            errorInfo('CHALLENGE_INVALID_UPDATE_MASK', {
              'update-mask': 'paths:"nope" paths:"timeout"',
            }),
            badRequest(['update-mask', 'INVALID_UPDATE_MASK', 'The update mask is malformed.']),
            {
              '@type': `${T}Help`,
              links: [
                {
                  description: expect.stringContaining('Field mask') as unknown,
                  url: expect.stringContaining('protobuf.dev') as unknown,
                },
                {
                  description: expect.stringContaining('AIP-161') as unknown,
                  url: 'https://google.aip.dev/161',
                },
              ],
            },
          ],
        },
      ),
    );
  });

  it('should answer OCI_INTERACTION when the registry is down', async () => {
    // Nothing listens there: the connection is refused, the call answers (no hang).
    const down = `127.0.0.1:${await freePort()}/errors/down:v1`;
    await expectNoStateChange(
      () =>
        expectBoth(
          () => rest('POST', '/api/v1/challenge', { id: 'down', scenario: down }),
          () => challengeRpc('CreateChallenge', { id: 'down', scenario: down }),
          {
            code: 9,
            http: 400,
            message: 'Registry is not available. You might want to try again later.',
            details: [
              errorInfo('OCI_INTERACTION', { reference: down }, OCI_DOMAIN),
              badRequest(['scenario', 'OCI_INTERACTION', 'Registry is unreachable.']),
            ],
          },
        ),
      'down',
    );
  });

  it('should answer OCI_REFERENCE_NOT_FOUND when the tag or repository is unknown', async () => {
    for (const missing of [
      `${registry}/errors/outputs-only:nope`,
      `${registry}/errors/no-such-repository:v1`,
    ]) {
      await expectNoStateChange(
        () =>
          expectBoth(
            () => rest('POST', '/api/v1/challenge', { id: 'missing', scenario: missing }),
            () => challengeRpc('CreateChallenge', { id: 'missing', scenario: missing }),
            {
              code: 3,
              http: 400,
              message: 'Registry does not contain reference.',
              details: [
                errorInfo('OCI_REFERENCE_NOT_FOUND', { reference: missing }, OCI_DOMAIN),
                badRequest(['scenario', 'OCI_REFERENCE_NOT_FOUND', 'Reference not found.']),
              ],
            },
          ),
        'missing',
      );
    }
  });

  it.each([
    ['a digest that is not sha256', () => `${registry}/errors/outputs-only@md5:0123456789abcdef`],
    ['an upper-case repository', () => `${registry}/Errors/Outputs:v1`],
    ['an empty reference', () => ''],
  ])('should answer OCI_REFERENCE_MALFORMED when the scenario is %s', async (_case, reference) => {
    const bad = reference();
    await expectNoStateChange(
      () =>
        expectBoth(
          () => rest('POST', '/api/v1/challenge', { id: 'malformed', scenario: bad }),
          () => challengeRpc('CreateChallenge', { id: 'malformed', scenario: bad }),
          {
            code: 3,
            http: 400,
            message: 'OCI reference is malformed.',
            details: [
              errorInfo('OCI_REFERENCE_MALFORMED', { reference: bad }),
              resourceInfo('Reference', bad, expect.stringMatching(/\S/) as unknown),
              {
                '@type': `${T}Help`,
                links: [
                  {
                    description: expect.any(String) as unknown,
                    url: 'https://github.com/opencontainers/image-spec',
                  },
                ],
              },
            ],
          },
        ),
      'malformed',
    );
  });

  it('should answer OCI_REFERENCE_MALFORMED when updating to a malformed scenario', async () => {
    const bad = `${registry}/errors/outputs-only@md5:0123456789abcdef`;
    await expectNoStateChange(() =>
      expectBoth(
        () => rest('PATCH', `/api/v1/challenge/${ID}`, { scenario: bad, updateMask: 'scenario' }),
        () =>
          challengeRpc('UpdateChallenge', {
            id: ID,
            scenario: bad,
            updateMask: { paths: ['scenario'] },
          }),
        {
          code: 3,
          http: 400,
          message: 'OCI reference is malformed.',
          details: [
            errorInfo('OCI_REFERENCE_MALFORMED', { reference: bad }),
            resourceInfo('Reference', bad, expect.stringMatching(/\S/) as unknown),
            expect.objectContaining({ '@type': `${T}Help` }),
          ],
        },
      ),
    );
    const got = (await (await rest('GET', `/api/v1/challenge/${ID}`)).json()) as object;
    expect(got).toMatchObject({ scenario });
  });

  it('should answer SCENARIO_NON_MATCHING_SPECIFICATION when the artifact has no Pulumi.yaml', async () => {
    const expectedHead = [
      errorInfo('SCENARIO_NON_MATCHING_SPECIFICATION', { reference: noPulumiYaml }),
      resourceInfo(
        'Scenario',
        noPulumiYaml,
        'A Pulumi program acting as a challenge instance deployment scenario.',
      ),
      {
        '@type': `${T}Help`,
        links: [
          {
            description: 'Definition of a Scenario.',
            url: 'https://ctfer.io/docs/chall-manager/glossary/#scenario',
          },
          {
            description: 'Step-by-step guide to create a Scenario.',
            url: 'https://ctfer.io/docs/chall-manager/challmaker-guides/create-scenario/',
          },
        ],
      },
    ];
    await expectNoStateChange(async () => {
      const res = await rest('POST', '/api/v1/challenge', { id: 'nospec', scenario: noPulumiYaml });
      expect(res.status).toBe(400);
      const fromRest = (await res.json()) as RpcStatusJson;
      expect(fromRest).toMatchObject({
        code: 3,
        message: 'Scenario does not match specification.',
      });
      expect(fromRest.details.slice(0, 3)).toEqual(expectedHead);
      // A validation text may follow, the scenario author's own (here: what is missing).
      for (const extra of fromRest.details.slice(3)) {
        expect(extra).toMatchObject({
          '@type': `${T}BadRequest`,
          fieldViolations: [{ field: 'scenario', reason: 'VALIDATION' }],
        });
      }
      const err = await grpcError(
        challengeRpc('CreateChallenge', { id: 'nospec', scenario: noPulumiYaml }),
      );
      expect([err.code, err.details]).toEqual([3, 'Scenario does not match specification.']);
      expect(grpcStatusOf(err)).toEqual(fromRest);
    }, 'nospec');
  });
});

/** Ids far over the 256-byte limit: 32 KiB in bodies, 8 KiB in URLs (Node reads 16 KiB of headers). */
const huge = 'x'.repeat(32 * 1024);
const long = 'x'.repeat(8 * 1024);

describe('malformed input on REST', () => {
  const big = 'x'.repeat(1024 * 1024 + 16);
  it.each([
    ['bad JSON', 'POST', '/api/v1/challenge', '{"id":', 'body'],
    ['bad JSON', 'PATCH', `/api/v1/challenge/${ID}`, '{"updateMask":', 'body'],
    ['bad JSON', 'POST', '/api/v1/instance', '{"challengeId"', 'body'],
    ['a JSON array', 'POST', '/api/v1/challenge', '[1,2]', 'body'],
    ['a number id', 'POST', '/api/v1/challenge', { id: 5, scenario: 'r/s:v1' }, 'id'],
    ['a non-integer min', 'POST', '/api/v1/challenge', { id: 'bad', min: 1.5 }, 'min'],
    ['a word as max', 'POST', '/api/v1/challenge', { id: 'bad', max: 'ten' }, 'max'],
    ['a number timeout', 'POST', '/api/v1/challenge', { id: 'bad', timeout: 600 }, 'timeout'],
    ['a word timeout', 'POST', '/api/v1/challenge', { id: 'bad', timeout: 'long' }, 'timeout'],
    ['a word until', 'POST', '/api/v1/challenge', { id: 'bad', until: 'tomorrow' }, 'until'],
    [
      'a number in additional',
      'POST',
      '/api/v1/challenge',
      { id: 'bad', additional: { a: 1 } },
      'additional',
    ],
    [
      'an array additional',
      'POST',
      '/api/v1/challenge',
      { id: 'bad', additional: ['a'] },
      'additional',
    ],
    ['an empty id', 'POST', '/api/v1/challenge', { id: '', scenario: 'r/s:v1' }, 'id'],
    ['no id', 'POST', '/api/v1/challenge', { scenario: 'r/s:v1' }, 'id'],
    ['a zero timeout', 'POST', '/api/v1/challenge', { id: 'bad', timeout: '0s' }, 'timeout'],
    ['a negative timeout', 'POST', '/api/v1/challenge', { id: 'bad', timeout: '-5s' }, 'timeout'],
    [
      'a zero timeout',
      'PATCH',
      `/api/v1/challenge/${ID}`,
      { timeout: '0s', updateMask: 'timeout' },
      'timeout',
    ],
    [
      'an unknown strategy',
      'PATCH',
      `/api/v1/challenge/${ID}`,
      { updateStrategy: 'sideways', updateMask: '' },
      'updateStrategy',
    ],
    [
      'a snake_case mask path',
      'PATCH',
      `/api/v1/challenge/${ID}`,
      { updateMask: 'update_strategy' },
      'updateMask',
    ],
    [
      'a mask with spaces',
      'PATCH',
      `/api/v1/challenge/${ID}`,
      { updateMask: 'timeout, until' },
      'updateMask',
    ],
    ['a number mask', 'PATCH', `/api/v1/challenge/${ID}`, { updateMask: 3 }, 'updateMask'],
    [
      'an empty challengeId',
      'POST',
      '/api/v1/instance',
      { challengeId: '', sourceId: 'x' },
      'challengeId',
    ],
    [
      'an empty sourceId',
      'POST',
      '/api/v1/instance',
      { challengeId: ID, sourceId: '' },
      'sourceId',
    ],
    ['no sourceId', 'GET', '/api/v1/instance', undefined, 'sourceId'],
    ['an empty sourceId', 'GET', '/api/v1/instance?sourceId=', undefined, 'sourceId'],
    [
      'a wrong type in the renew body',
      'PATCH',
      `/api/v1/instance/${ID}/${SOURCE}`,
      { sourceId: 3 },
      'sourceId',
    ],
    [
      'a timeout putting until past the last Timestamp',
      'POST',
      '/api/v1/challenge',
      { id: 'bad', scenario: 'r/s:v1', timeout: '315576000000s' },
      'timeout',
    ],
    [
      'a timeout putting until past the last Timestamp',
      'PATCH',
      `/api/v1/challenge/${ID}`,
      { timeout: '315576000000s', updateMask: 'timeout' },
      'timeout',
    ],
    [
      'an until past the last Timestamp',
      'POST',
      '/api/v1/challenge',
      { id: 'bad', scenario: 'r/s:v1', until: '10000-01-01T00:00:00Z' },
      'until',
    ],
    ['a 32 KiB id', 'POST', '/api/v1/challenge', { id: huge, scenario: 'r/s:v1' }, 'id'],
    [
      'a 32 KiB sourceId',
      'POST',
      '/api/v1/instance',
      { challengeId: ID, sourceId: huge },
      'sourceId',
    ],
    [
      'a 32 KiB challengeId',
      'POST',
      '/api/v1/instance',
      { challengeId: huge, sourceId: SOURCE },
      'challengeId',
    ],
    [
      'a 2 KiB scenario',
      'POST',
      '/api/v1/challenge',
      { id: 'bad', scenario: `r/${'s'.repeat(2048)}:v1` },
      'scenario',
    ],
    [
      'a 2 KiB scenario',
      'PATCH',
      `/api/v1/challenge/${ID}`,
      { scenario: `r/${'s'.repeat(2048)}:v1`, updateMask: 'scenario' },
      'scenario',
    ],
    [
      'a 40 KiB additional',
      'POST',
      '/api/v1/challenge',
      { id: 'bad', scenario: 'r/s:v1', additional: { k: 'v'.repeat(40 * 1024) } },
      'additional',
    ],
    [
      'a 40 KiB additional',
      'POST',
      '/api/v1/instance',
      { challengeId: ID, sourceId: 'bad', additional: { k: 'v'.repeat(40 * 1024) } },
      'additional',
    ],
    ['an oversized body', 'POST', '/api/v1/challenge', { id: 'bad', scenario: big }, 'body'],
  ] as const)(
    'should answer 400 INVALID_ARGUMENT naming the field and change nothing when sending %s to %s %s',
    async (_case, method, path, body, field) => {
      await expectNoStateChange(async () => {
        const res = await rest(method, path, body);
        const text = await res.text();
        expect(res.status, text).toBe(400);
        const status = JSON.parse(text) as RpcStatusJson;
        expect(status.code).toBe(3);
        expect(status.message).toContain(field);
        expect(status.details).toEqual([
          errorInfo('INVALID_ARGUMENT', { field }),
          badRequest([field, 'INVALID_ARGUMENT', expect.any(String)]),
        ]);
      }, 'bad');
      // The instance and the challenge it belongs to are untouched.
      const challenge = (await (await rest('GET', `/api/v1/challenge/${ID}`)).json()) as {
        timeout: unknown;
        until: unknown;
        instances: unknown[];
      };
      expect(challenge).toMatchObject({ timeout: null, until: '2000-01-01T00:00:00Z' });
      expect(challenge.instances).toHaveLength(1);
    },
  );

  // The URL holds the 8 KiB id where the route says {id}; the test name keeps the route.
  it.each([
    ['GET', '/api/v1/challenge/{id}', undefined, 'id'],
    ['PATCH', '/api/v1/challenge/{id}', { updateMask: '' }, 'id'],
    ['DELETE', '/api/v1/challenge/{id}', undefined, 'id'],
    ['GET', `/api/v1/instance/${ID}/{id}`, undefined, 'sourceId'],
    ['PATCH', `/api/v1/instance/${ID}/{id}`, {}, 'sourceId'],
    ['DELETE', `/api/v1/instance/${ID}/{id}`, undefined, 'sourceId'],
    ['GET', '/api/v1/instance?sourceId={id}', undefined, 'sourceId'],
  ] as const)(
    'should answer 400 INVALID_ARGUMENT naming the field without echoing it when %s %s carries an 8 KiB id',
    async (method, route, body, field) => {
      await expectNoStateChange(async () => {
        const res = await rest(method, route.replace('{id}', long), body);
        const text = await res.text();
        expect(res.status, text).toBe(400);
        expect(text).not.toContain(long.slice(0, MAX_ID_BYTES + 1));
        expect(JSON.parse(text)).toEqual({
          code: 3,
          message: `invalid ${field}: must be at most ${MAX_ID_BYTES} bytes`,
          details: [
            errorInfo('INVALID_ARGUMENT', { field }),
            badRequest([field, 'INVALID_ARGUMENT', `must be at most ${MAX_ID_BYTES} bytes`]),
          ],
        });
      });
    },
  );
});

describe('bodies that are not what their Content-Encoding says', () => {
  const json = Buffer.from(JSON.stringify({ id: 'bad', scenario: 'r/s:v1' }));
  it.each([
    ['gzip', 'plain JSON', json],
    ['gzip', 'a truncated gzip stream', gzipSync(json).subarray(0, 12)],
    ['deflate', 'plain JSON', json],
    ['br', 'gzip bytes', gzipSync(json)],
    ['br', 'a truncated brotli stream', brotliCompressSync(json).subarray(0, 5)],
  ] as const)(
    'should answer 400 INVALID_ARGUMENT on the body, log no error and change nothing when a %s body is %s',
    async (encoding, _case, bytes) => {
      const logStart = svc.logs().length;
      await expectNoStateChange(async () => {
        const res = await svc.rest('/api/v1/challenge', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          body: bytes,
        });
        const text = await res.text();
        expect(res.status, text).toBe(400);
        const status = JSON.parse(text) as RpcStatusJson;
        expect(status.code).toBe(3);
        expect(status.message).toMatch(/^invalid body: /);
        expect(status.details).toEqual([
          errorInfo('INVALID_ARGUMENT', { field: 'body' }),
          badRequest(['body', 'INVALID_ARGUMENT', expect.any(String)]),
        ]);
      }, 'bad');
      expect(svc.logs().slice(logStart)).not.toMatch(/"level":"error"/);
    },
  );

  it('should still decode a body that is what its Content-Encoding says', async () => {
    const res = await svc.rest('/api/v1/challenge', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(Buffer.from(JSON.stringify({ id: '', scenario: 'r/s:v1' }))),
    });
    // Decoded, then refused for its empty id: the body itself was read.
    expect(res.status).toBe(400);
    expect(((await res.json()) as RpcStatusJson).details[0]).toEqual(
      errorInfo('INVALID_ARGUMENT', { field: 'id' }),
    );
  });
});

describe('malformed input on gRPC', () => {
  const zero = { seconds: '0', nanos: 0 };
  it.each([
    ['CreateChallenge', 'an empty id', { id: '', scenario: 'r/s:v1' }, 'id'],
    ['RetrieveChallenge', 'an empty id', { id: '' }, 'id'],
    ['UpdateChallenge', 'an empty id', { id: '', updateMask: { paths: ['timeout'] } }, 'id'],
    ['DeleteChallenge', 'an empty id', { id: '' }, 'id'],
    [
      'CreateChallenge',
      'a zero timeout',
      { id: 'bad', scenario: 'r/s:v1', timeout: zero },
      'timeout',
    ],
    [
      'CreateChallenge',
      'a negative timeout',
      { id: 'bad', timeout: { seconds: '-5', nanos: 0 } },
      'timeout',
    ],
    [
      'UpdateChallenge',
      'a zero timeout',
      { id: ID, timeout: zero, updateMask: { paths: ['timeout'] } },
      'timeout',
    ],
    [
      'CreateChallenge',
      'out-of-range nanos',
      { id: 'bad', until: { seconds: '1', nanos: 2_000_000_000 } },
      'until',
    ],
    [
      'CreateChallenge',
      'a timeout putting until past the last Timestamp',
      { id: 'bad', scenario: 'r/s:v1', timeout: { seconds: '315576000000', nanos: 0 } },
      'timeout',
    ],
    [
      'UpdateChallenge',
      'a timeout putting until past the last Timestamp',
      {
        id: ID,
        timeout: { seconds: '315576000000', nanos: 0 },
        updateMask: { paths: ['timeout'] },
      },
      'timeout',
    ],
    [
      'CreateChallenge',
      'an until past the last Timestamp',
      { id: 'bad', scenario: 'r/s:v1', until: { seconds: '253402300800', nanos: 0 } },
      'until',
    ],
    [
      'UpdateChallenge',
      'an unknown strategy number',
      { id: ID, updateStrategy: 7, updateMask: { paths: [] } },
      'updateStrategy',
    ],
  ] as const)(
    'should answer INVALID_ARGUMENT naming the field and change nothing when calling %s with %s',
    async (method, _case, req, field) => {
      await expectNoStateChange(async () => {
        const err = await grpcError(challengeRpc(method, req));
        expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
        expect(err.details).toContain(field);
        expect(grpcStatusOf(err)?.details).toEqual([
          errorInfo('INVALID_ARGUMENT', { field }),
          badRequest([field, 'INVALID_ARGUMENT', expect.any(String)]),
        ]);
      }, 'bad');
    },
  );

  it.each([
    ['CreateInstance', { challengeId: '', sourceId: 'x' }, 'challengeId'],
    ['CreateInstance', { challengeId: ID, sourceId: '' }, 'sourceId'],
    ['RetrieveInstance', { challengeId: ID, sourceId: '' }, 'sourceId'],
    ['RenewInstance', { challengeId: '', sourceId: SOURCE }, 'challengeId'],
    ['DeleteInstance', { challengeId: ID, sourceId: '' }, 'sourceId'],
  ] as const)(
    'should answer INVALID_ARGUMENT naming the field when calling %s with an empty id',
    async (method, req, field) => {
      await expectNoStateChange(async () => {
        const err = await grpcError(instanceRpc(method, req));
        expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
        expect(err.details).toContain(field);
        expect(grpcStatusOf(err)?.details).toEqual([
          errorInfo('INVALID_ARGUMENT', { field }),
          badRequest([field, 'INVALID_ARGUMENT', expect.any(String)]),
        ]);
      });
      const listed = await ndjson(await svc.rest(`/api/v1/instance?sourceId=${SOURCE}`));
      expect(listed).toHaveLength(1);
    },
  );

  it('should fail the QueryInstance stream with INVALID_ARGUMENT when the source id is empty', async () => {
    const err = await grpcError(
      svc.grpc.stream(svc.grpc.instance, 'QueryInstance')({ sourceId: '' }),
    );
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.details).toContain('sourceId');
  });
});

describe('a recorded timeout putting until past the last Timestamp', () => {
  const LEGACY = 'legacy-timeout';
  const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

  it('should answer INVALID_ARGUMENT naming timeout and deploy nothing when creating an instance', async () => {
    const created = await rest('POST', '/api/v1/challenge', {
      id: LEGACY,
      scenario,
      timeout: '600s',
    });
    expect(created.status, await created.text()).toBe(200);
    // As a record stored before timeouts were checked holds it: "315576000000s" in nanoseconds.
    const record = join(svc.dir, 'chall', md5(LEGACY), 'info.json');
    const text = readFileSync(record, 'utf8');
    expect(text).toContain('"timeout":600000000000');
    writeFileSync(
      record,
      text.replace('"timeout":600000000000', '"timeout":315576000000000000000'),
    );
    const got = (await (await rest('GET', `/api/v1/challenge/${LEGACY}`)).json()) as object;
    expect(got).toMatchObject({ timeout: '315576000000s' });

    const expected: Expected = {
      code: 3,
      http: 400,
      message:
        "invalid timeout: the challenge's timeout puts the instance's until past 9999-12-31T23:59:59Z, the last instant a Timestamp can carry; update the challenge's timeout",
      details: [
        errorInfo('INVALID_ARGUMENT', { field: 'timeout' }),
        badRequest(['timeout', 'INVALID_ARGUMENT', expect.any(String)]),
      ],
    };
    await expectBoth(
      () => rest('POST', '/api/v1/instance', { challengeId: LEGACY, sourceId: SOURCE }),
      () => instanceRpc('CreateInstance', { challengeId: LEGACY, sourceId: SOURCE }),
      expected,
    );
    expect(
      existsSync(join(svc.dir, 'chall', md5(LEGACY), 'instance'))
        ? readdirSync(join(svc.dir, 'chall', md5(LEGACY), 'instance'))
        : [],
    ).toEqual([]);
    const deleted = await rest('DELETE', `/api/v1/challenge/${LEGACY}`);
    expect(deleted.status).toBe(200);
  });
});

describe('oversized fields on gRPC', () => {
  type Callback = (err: ServiceError | null, res?: unknown) => void;
  type Method = (req: object, options: CallOptions, callback: Callback) => unknown;
  /** A unary call on the shared clients (one HTTP/2 connection) that gives up after 10 s. */
  const call = (
    client: Client & Record<string, unknown>,
    method: string,
    req: object,
  ): Promise<unknown> =>
    new Promise((resolve, reject) => {
      (client[method] as Method).call(
        client,
        req,
        { deadline: Date.now() + 10_000 },
        (err: ServiceError | null, res?: unknown) => (err ? reject(err) : resolve(res)),
      );
    });

  const ID_PROBLEM = 'must be at most 256 bytes';
  it.each([
    ['ChallengeStore', 'RetrieveChallenge', 'id', { id: huge }, ID_PROBLEM],
    ['ChallengeStore', 'DeleteChallenge', 'id', { id: huge }, ID_PROBLEM],
    ['ChallengeStore', 'CreateChallenge', 'id', { id: huge, scenario: 'r/s:v1' }, ID_PROBLEM],
    [
      'ChallengeStore',
      'UpdateChallenge',
      'id',
      { id: huge, updateMask: { paths: ['timeout'] }, timeout: { seconds: '60', nanos: 0 } },
      ID_PROBLEM,
    ],
    [
      'ChallengeStore',
      'CreateChallenge',
      'scenario',
      { id: 'bad', scenario: `r/${'s'.repeat(2048)}:v1` },
      'must be at most 1024 bytes',
    ],
    [
      'ChallengeStore',
      'CreateChallenge',
      'additional',
      { id: 'bad', scenario: 'r/s:v1', additional: { k: 'v'.repeat(40 * 1024) } },
      'keys and values together must be at most 32768 bytes',
    ],
    [
      'InstanceManager',
      'CreateInstance',
      'sourceId',
      { challengeId: ID, sourceId: huge },
      ID_PROBLEM,
    ],
    [
      'InstanceManager',
      'CreateInstance',
      'challengeId',
      { challengeId: huge, sourceId: 'x' },
      ID_PROBLEM,
    ],
    [
      'InstanceManager',
      'RetrieveInstance',
      'challengeId',
      { challengeId: huge, sourceId: SOURCE },
      ID_PROBLEM,
    ],
    [
      'InstanceManager',
      'RenewInstance',
      'sourceId',
      { challengeId: ID, sourceId: huge },
      ID_PROBLEM,
    ],
    [
      'InstanceManager',
      'DeleteInstance',
      'sourceId',
      { challengeId: ID, sourceId: huge },
      ID_PROBLEM,
    ],
  ] as const)(
    'should answer %s/%s INVALID_ARGUMENT naming %s without echoing it, while a call beside it on the same connection succeeds',
    async (service, method, field, req, problem) => {
      const client = service === 'ChallengeStore' ? svc.grpc.challenge : svc.grpc.instance;
      await expectNoStateChange(async () => {
        // Both in flight at once on the one HTTP/2 connection of the clients.
        const [refused, beside] = await Promise.allSettled([
          call(client, method, req),
          call(svc.grpc.challenge, 'RetrieveChallenge', { id: ID }),
        ]);
        expect(beside.status, String(beside.status === 'rejected' && beside.reason)).toBe(
          'fulfilled',
        );
        expect(refused.status).toBe('rejected');
        const err = (refused as PromiseRejectedResult).reason as ServiceError;
        expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
        expect(err.details).toBe(`invalid ${field}: ${problem}`);
        expect(grpcStatusOf(err)?.details).toEqual([
          errorInfo('INVALID_ARGUMENT', { field }),
          badRequest([field, 'INVALID_ARGUMENT', problem]),
        ]);
      }, 'bad');
      // And the next call on that connection too.
      await expect(
        call(svc.grpc.instance, 'RetrieveInstance', { challengeId: ID, sourceId: SOURCE }),
      ).resolves.toMatchObject({ challengeId: ID, sourceId: SOURCE });
    },
  );

  it('should fail the QueryInstance stream with INVALID_ARGUMENT naming sourceId when it is oversized', async () => {
    const err = await grpcError(
      svc.grpc.stream(svc.grpc.instance, 'QueryInstance')({ sourceId: huge }),
    );
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.details).toBe('invalid sourceId: must be at most 256 bytes');
    await expect(call(svc.grpc.challenge, 'RetrieveChallenge', { id: ID })).resolves.toMatchObject({
      id: ID,
    });
  });
});

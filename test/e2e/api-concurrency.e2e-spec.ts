import { status as GrpcStatus } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RpcStatusJson } from '../../src/shared/transport/rpc-status';
import {
  bootApiApp,
  eventually,
  grpcError,
  grpcStatusOf,
  jsonInit,
  ndjson,
  type ApiApp,
} from '../support/api-app';
import {
  failingUpScenario,
  hangingUpScenario,
  identityOfOutputsOnly,
  overlapRecordingScenario,
  outputsOnlyScenario,
  throwingProgramScenario,
} from '../support/api-scenarios';
import { orasPush } from '../support/oras';
import { scenarioOf } from '../support/scenarios';

/**
 * Concurrency and failure against the real service: one instance per (challenge, source) under
 * a burst of creations on both transports, and no orphan, no record and no
 * leaked Pulumi text when `up` fails.
 */

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
/** The `error_id` of a status's ErrorInfo. */
const errorIdOf = (status: RpcStatusJson | undefined): string => {
  const info = status?.details.find((d) => d['@type'] === `${T}ErrorInfo`) as
    { metadata?: Record<string, string> } | undefined;
  return info?.metadata?.error_id ?? 'none';
};
const T = 'type.googleapis.com/google.rpc.';
const listDir = (path: string): string[] => (existsSync(path) ? readdirSync(path).sort() : []);

let svc: ApiApp;
let registry: string;

beforeAll(async () => {
  svc = await bootApiApp({ JANITOR_TICKER: '0' });
  registry = inject('registry');
});
afterAll(async () => {
  await svc?.close();
});

/** A finished call: what a client of either transport saw. */
type Outcome =
  | { transport: string; ok: true; body: Record<string, unknown> }
  | { transport: string; ok: false; status: RpcStatusJson | undefined; http?: number };

describe('20 concurrent CreateInstance for one source', () => {
  const id = 'burst';
  const source = 'team-1';

  beforeAll(async () => {
    const scenario = await orasPush(
      registry,
      'concurrency/outputs-only:v1',
      scenarioOf(svc.scratch, 'outputs-only', outputsOnlyScenario()),
    );
    const res = await svc.rest('/api/v1/challenge', jsonInit('POST', { id, scenario }));
    expect(res.status, await res.text()).toBe(200);
  });
  afterAll(async () => {
    await svc.rest(`/api/v1/challenge/${id}`, { method: 'DELETE' });
  });

  it('should create exactly one instance and answer INSTANCE_ALREADY_EXISTS to the 19 others when they race', async () => {
    const viaRest = async (): Promise<Outcome> => {
      const res = await svc.rest(
        '/api/v1/instance',
        jsonInit('POST', { challengeId: id, sourceId: source }),
      );
      const body = (await res.json()) as Record<string, unknown>;
      return res.status === 200
        ? { transport: 'REST', ok: true, body }
        : {
            transport: 'REST',
            ok: false,
            status: body as unknown as RpcStatusJson,
            http: res.status,
          };
    };
    const viaGrpc = (): Promise<Outcome> =>
      svc.grpc
        .unary(
          svc.grpc.instance,
          'CreateInstance',
        )({ challengeId: id, sourceId: source })
        .then(
          (body): Outcome => ({ transport: 'gRPC', ok: true, body }),
          (err: unknown): Outcome => ({
            transport: 'gRPC',
            ok: false,
            status: grpcStatusOf(err as Parameters<typeof grpcStatusOf>[0]),
          }),
        );
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? viaRest() : viaGrpc())),
    );

    const successes = outcomes.filter((o) => o.ok);
    const failures = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    expect(successes).toHaveLength(1);
    expect(failures).toHaveLength(19);
    for (const f of failures) {
      expect(f.status?.code, JSON.stringify(f)).toBe(GrpcStatus.ALREADY_EXISTS);
      expect(f.status?.message).toBe('Instance already exists.');
      expect(f.status?.details[0]).toMatchObject({
        reason: 'INSTANCE_ALREADY_EXISTS',
        metadata: { challenge_id: id, source_id: source },
      });
      if (f.transport === 'REST') expect(f.http).toBe(409);
    }
    expect(successes[0]?.ok && successes[0].body).toMatchObject({
      challengeId: id,
      sourceId: source,
    });

    const listed = await ndjson(await svc.rest(`/api/v1/instance?sourceId=${source}`));
    expect(listed).toHaveLength(1);
    const challenge = (await (await svc.rest(`/api/v1/challenge/${id}`)).json()) as {
      instances: unknown[];
    };
    expect(challenge.instances).toHaveLength(1);
    // One record and one stack on disk: the losers deployed nothing.
    expect(listDir(join(svc.dir, 'chall', md5(id), 'instance'))).toHaveLength(1);
    expect(listDir(join(svc.dir, 'pulumi', 'stacks', md5(id)))).toHaveLength(1);
    const backendStacks = join(svc.dir, 'pulumi', 'backend', '.pulumi', 'stacks', 'outputs-only');
    expect(listDir(backendStacks).filter((f) => f.endsWith('.json'))).toHaveLength(1);
  });
});

describe('CreateInstance whose up fails', () => {
  const id = 'fails';
  let markerDir: string;

  beforeAll(async () => {
    markerDir = join(svc.scratch, 'markers');
    mkdirSync(markerDir);
    const scenario = await orasPush(
      registry,
      'concurrency/failing-up:v1',
      scenarioOf(svc.scratch, 'failing-up', failingUpScenario(markerDir)),
    );
    const res = await svc.rest('/api/v1/challenge', jsonInit('POST', { id, scenario }));
    expect(res.status, await res.text()).toBe(200);
  });
  afterAll(async () => {
    await svc.rest(`/api/v1/challenge/${id}`, { method: 'DELETE' });
  });

  /** Nothing left of a failed creation: no record, no marker, no stack. */
  async function expectNothingLeft(source: string, attempts: number): Promise<void> {
    const journal = readFileSync(join(markerDir, 'journal.log'), 'utf8').trim().split('\n');
    // The resource was created (so the failure came after it), then destroyed.
    expect(journal.filter((l) => l.startsWith('created '))).toHaveLength(attempts);
    expect(journal.filter((l) => l.startsWith('deleted '))).toHaveLength(attempts);
    expect(listDir(markerDir)).toEqual(['journal.log']);

    const got = await svc.rest(`/api/v1/instance/${id}/${source}`);
    expect(got.status).toBe(404);
    expect(await ndjson(await svc.rest(`/api/v1/instance?sourceId=${source}`))).toEqual([]);
    expect(listDir(join(svc.dir, 'chall', md5(id), 'instance'))).toEqual([]);
    expect(listDir(join(svc.dir, 'pulumi', 'stacks', md5(id)))).toEqual([]);
    const stacks = join(svc.dir, 'pulumi', 'backend', '.pulumi', 'stacks');
    expect(listDir(join(stacks, 'failing-up'))).toEqual([]);
    expect(listDir(join(stacks, 'organization', 'failing-up'))).toEqual([]);
  }

  /** The id a client got names one log line, which holds the program's failure. */
  function expectCauseLogged(errorId: string): void {
    const lines = svc
      .logs()
      .split('\n')
      .filter((l) => l.includes(`error_id=${errorId}`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('SECRET-PULUMI-TEXT');
  }

  it('should answer INTERNAL without Pulumi text and leave nothing when creating over REST', async () => {
    const res = await svc.rest(
      '/api/v1/instance',
      jsonInit('POST', { challengeId: id, sourceId: 'rest' }),
    );
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(text).not.toContain('SECRET-PULUMI-TEXT');
    expect(text).not.toMatch(/pulumi|stack|program/i);
    expect(JSON.parse(text)).toEqual({
      code: 13,
      message: 'An internal error occurred.',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'INTERNAL_ERROR',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { error_id: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown },
        },
      ],
    });
    expectCauseLogged(errorIdOf(JSON.parse(text) as RpcStatusJson));
    await expectNothingLeft('rest', 1);
  });

  it('should answer INTERNAL without Pulumi text and leave nothing when creating over gRPC', async () => {
    const err = await grpcError(
      svc.grpc.unary(svc.grpc.instance, 'CreateInstance')({ challengeId: id, sourceId: 'grpc' }),
    );
    expect(err.code).toBe(GrpcStatus.INTERNAL);
    expect(err.details).toBe('An internal error occurred.');
    const status = grpcStatusOf(err);
    expect(JSON.stringify(status)).not.toContain('SECRET-PULUMI-TEXT');
    expect(status).toEqual({
      code: 13,
      message: 'An internal error occurred.',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'INTERNAL_ERROR',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { error_id: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown },
        },
      ],
    });
    expectCauseLogged(errorIdOf(status));
    await expectNothingLeft('grpc', 2);
  });
});

describe('CreateInstance whose up outlives IAC_TIMEOUT', () => {
  const id = 'hangs';
  let short: ApiApp;

  beforeAll(async () => {
    short = await bootApiApp({ JANITOR_TICKER: '0', IAC_TIMEOUT: '15s', IAC_CANCEL_GRACE: '3s' });
    const scenario = await orasPush(
      registry,
      'concurrency/hanging-up:v1',
      scenarioOf(short.scratch, 'hanging-up', hangingUpScenario()),
    );
    const res = await short.rest('/api/v1/challenge', jsonInit('POST', { id, scenario }));
    expect(res.status, await res.text()).toBe(200);
  });
  afterAll(async () => {
    await short?.close();
  });

  it('should answer DEADLINE_EXCEEDED (504) with an error id that names the logged cause', async () => {
    const res = await short.rest(
      '/api/v1/instance',
      jsonInit('POST', { challengeId: id, sourceId: 'late' }),
    );
    const body = (await res.json()) as RpcStatusJson;
    expect(res.status).toBe(504);
    expect(body).toEqual({
      code: 4,
      message: 'Deployment timed out.',
      details: [
        {
          '@type': `${T}ErrorInfo`,
          reason: 'IAC_TIMEOUT',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { error_id: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown },
        },
      ],
    });
    const logged = short
      .logs()
      .split('\n')
      .filter((l) => l.includes(`error_id=${errorIdOf(body)}`));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('IacTimeoutError');
    // Nothing kept of the cancelled creation.
    expect((await short.rest(`/api/v1/instance/${id}/late`)).status).toBe(404);
    expect(listDir(join(short.dir, 'chall', md5(id), 'instance'))).toEqual([]);
    expect(listDir(join(short.dir, 'pulumi', 'stacks', md5(id)))).toEqual([]);
  });
});

describe('CreateInstance whose program throws', () => {
  const id = 'throws';
  let capped: ApiApp;

  beforeAll(async () => {
    // The operator's NODE_OPTIONS reach the programs: a 256 MB heap, as a small container would
    // set. On a Node with nodejs/node#64011 (20.19.6 and later 20.x), the SDK's coloured error
    // printing exhausts any heap: without the service's preload the program dies unreported.
    capped = await bootApiApp({ JANITOR_TICKER: '0', NODE_OPTIONS: '--max-old-space-size=256' });
    const scenario = await orasPush(
      registry,
      'concurrency/throwing-program:v1',
      scenarioOf(capped.scratch, 'throwing-program', throwingProgramScenario()),
    );
    const res = await capped.rest('/api/v1/challenge', jsonInit('POST', { id, scenario }));
    expect(res.status, await res.text()).toBe(200);
  });
  afterAll(async () => {
    await capped?.close();
  });

  it('should answer INTERNAL, log the program error under the error id and leave nothing when creating', async () => {
    const started = Date.now();
    const res = await capped.rest(
      '/api/v1/instance',
      jsonInit('POST', { challengeId: id, sourceId: 'thrower' }),
    );
    const body = (await res.json()) as RpcStatusJson;
    console.log(`CreateInstance of a throwing program answered in ${Date.now() - started} ms`);
    expect(res.status).toBe(500);
    expect(JSON.stringify(body)).not.toContain('SECRET-PULUMI-TEXT');
    expect(body).toEqual({
      code: 13,
      message: 'An internal error occurred.',
      details: [
        {
          '@type': `${T}ErrorInfo`,
          reason: 'INTERNAL_ERROR',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { error_id: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown },
        },
      ],
    });
    const logged = capped
      .logs()
      .split('\n')
      .filter((l) => l.includes(`error_id=${errorIdOf(body)}`));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('SECRET-PULUMI-TEXT: the program threw at top level');
    expect((await capped.rest(`/api/v1/instance/${id}/thrower`)).status).toBe(404);
    expect(listDir(join(capped.dir, 'chall', md5(id), 'instance'))).toEqual([]);
    expect(listDir(join(capped.dir, 'pulumi', 'stacks', md5(id)))).toEqual([]);
    const stacks = join(capped.dir, 'pulumi', 'backend', '.pulumi', 'stacks');
    expect(listDir(join(stacks, 'throwing-program'))).toEqual([]);
    expect(listDir(join(stacks, 'organization', 'throwing-program'))).toEqual([]);
  });
});

describe('IaC work under IAC_CONCURRENCY=2', () => {
  let gated: ApiApp;
  let dir: string;
  const running = (): string[] => listDir(dir).filter((f) => f.startsWith('running-'));

  beforeAll(async () => {
    gated = await bootApiApp({ JANITOR_TICKER: '0', IAC_CONCURRENCY: '2', LOG_LEVEL: 'info' });
    dir = join(gated.scratch, 'overlaps');
    mkdirSync(dir);
    const [recording, quick] = await Promise.all([
      orasPush(
        registry,
        'concurrency/overlap-recording:v1',
        scenarioOf(gated.scratch, 'overlap-recording', overlapRecordingScenario(dir)),
      ),
      orasPush(
        registry,
        'concurrency/outputs-only:pool',
        scenarioOf(gated.scratch, 'outputs-only', outputsOnlyScenario('pool')),
      ),
    ]);
    // A challenge with one pooled instance, ready before the gate fills.
    let res = await gated.rest(
      '/api/v1/challenge',
      jsonInit('POST', { id: 'pooled', scenario: quick, min: 1, timeout: '600s' }),
    );
    expect(res.status, await res.text()).toBe(200);
    await eventually('the pool of challenge pooled', 180_000, () =>
      Promise.resolve(listDir(join(gated.dir, 'chall', md5('pooled'), 'instance')).length === 1),
    );
    res = await gated.rest(
      '/api/v1/challenge',
      jsonInit('POST', { id: 'slow', scenario: recording }),
    );
    expect(res.status, await res.text()).toBe(200);
  });
  afterAll(async () => {
    writeFileSync(join(dir, 'release'), '');
    await gated?.close();
  });

  it('should run at most 2 ups at once and still answer claims and reads while both slots are taken', async () => {
    const pooledIdentity = listDir(join(gated.dir, 'chall', md5('pooled'), 'instance'))[0];
    const creates = ['s1', 's2', 's3'].map((sourceId) =>
      gated.rest('/api/v1/instance', jsonInit('POST', { challengeId: 'slow', sourceId })),
    );
    // Two programs run; the third `up` waits for a slot.
    await eventually(
      'two ups running and a third waiting for a slot',
      180_000,
      () =>
        Promise.resolve(
          running().length >= 2 && /of challenge slow waiting for an IaC slot/.test(gated.logs()),
        ),
      () => `running: ${running().join(', ')}`,
    );
    expect(running()).toHaveLength(2);

    // The gate is full: a claim from the pool, reads and a renewal are answered all the same.
    const claim = await gated.rest(
      '/api/v1/instance',
      jsonInit('POST', { challengeId: 'pooled', sourceId: 'p1' }),
    );
    const claimed = (await claim.json()) as Record<string, unknown>;
    expect(claim.status, JSON.stringify(claimed)).toBe(200);
    expect(identityOfOutputsOnly(claimed.connectionInfo)).toBe(pooledIdentity);
    expect((await gated.rest('/api/v1/instance/pooled/p1')).status).toBe(200);
    expect((await gated.rest('/api/v1/instance/pooled/p1', { method: 'PATCH' })).status).toBe(200);
    expect((await gated.rest('/api/v1/challenge/slow')).status).toBe(200);
    expect(running()).toHaveLength(2);

    writeFileSync(join(dir, 'release'), '');
    const answers = await Promise.all(creates);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    const overlaps = readFileSync(join(dir, 'overlaps.log'), 'utf8').trim().split('\n');
    expect(overlaps).toHaveLength(3);
    // Each program saw how many ran beside it, itself included: never more than the limit.
    expect(Math.max(...overlaps.map((l) => Number(l.split(' ')[1])))).toBe(2);
  });
});

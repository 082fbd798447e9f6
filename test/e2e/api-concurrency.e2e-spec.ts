import { status as GrpcStatus } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RpcStatusJson } from '../../src/shared/transport/rpc-status';
import {
  bootApiApp,
  grpcError,
  grpcStatusOf,
  jsonInit,
  ndjson,
  type ApiApp,
} from '../support/api-app';
import { failingUpScenario, outputsOnlyScenario } from '../support/api-scenarios';
import { orasPush } from '../support/oras';
import { scenarioOf } from '../support/scenarios';

/**
 * Concurrency and failure against the real service: one instance per (challenge, source) under
 * a burst of creations on both transports (decisions §2.2), and no orphan, no record and no
 * leaked Pulumi text when `up` fails (decisions §2.3, §2.9).
 */

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
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
          metadata: {},
        },
      ],
    });
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
          metadata: {},
        },
      ],
    });
    await expectNothingLeft('grpc', 2);
  });
});

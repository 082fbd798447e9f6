import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppModule } from '../../src/app.module';
import { ChallengeStoreService } from '../../src/challenge-store/challenge-store.service';
import type {
  ChallengeView,
  CreateChallengeInput,
  UpdateChallengeInput,
} from '../../src/challenge-store/challenge-store.types';
import { AppConfig } from '../../src/config';
import { InstanceManagerService } from '../../src/instance-manager/instance-manager.service';
import type { CreateInstanceInput } from '../../src/instance-manager/instance-manager.types';
import type { Instance } from '../../src/shared/domain';
import {
  ChallengeAlreadyExistsError,
  ChallengeNotFoundError,
  InstanceNotFoundError,
} from '../../src/shared/errors';
import { API_APP_OPTIONS, startApiServer, TransportModule } from '../../src/shared/transport';
import { connectApiClients, statusDetails, type ApiClients } from '../support/grpc-client';
import { freePort } from '../support/services';

/**
 * The API transport layer on ONE port, gRPC and REST, against in-memory service fakes (the
 * services have their own tests): wire shapes, streaming, error parity, routing answers.
 */

const T0 = new Date('2026-05-01T10:00:00.123Z');

/** ChallengeStoreService double: a map, plus knobs to make queries fail. */
class FakeChallengeStore {
  readonly challenges = new Map<string, ChallengeView>();
  lastUpdate: UpdateChallengeInput | undefined;
  /** When set, query() throws this after yielding that many challenges. */
  queryFailure: { after: number; error: Error } | undefined;

  create(input: CreateChallengeInput): Promise<ChallengeView> {
    if (input.id === 'crash') return Promise.reject(new Error('secret internal text'));
    if (this.challenges.has(input.id)) {
      return Promise.reject(new ChallengeAlreadyExistsError(input.id));
    }
    const view = { ...input, instances: [] };
    this.challenges.set(input.id, view);
    return Promise.resolve(view);
  }
  retrieve(id: string): Promise<ChallengeView> {
    const c = this.challenges.get(id);
    return c ? Promise.resolve(c) : Promise.reject(new ChallengeNotFoundError(id));
  }
  async *query(): AsyncIterable<ChallengeView> {
    let n = 0;
    for (const c of this.challenges.values()) {
      if (this.queryFailure && n === this.queryFailure.after) throw this.queryFailure.error;
      await Promise.resolve();
      yield c;
      n++;
    }
    if (this.queryFailure && n === this.queryFailure.after) throw this.queryFailure.error;
  }
  update(input: UpdateChallengeInput): Promise<ChallengeView> {
    this.lastUpdate = input;
    return this.retrieve(input.id);
  }
  delete(id: string): Promise<void> {
    return this.challenges.delete(id)
      ? Promise.resolve()
      : Promise.reject(new ChallengeNotFoundError(id));
  }
}

/** InstanceManagerService double: a map keyed by challenge/source. */
class FakeInstanceManager {
  readonly instances = new Map<string, Instance>();
  renewed: string[] = [];

  create(input: CreateInstanceInput): Promise<Instance> {
    const instance: Instance = {
      challengeId: input.challengeId,
      identity: '0123456789abcdef',
      sourceId: input.sourceId,
      since: T0,
      lastRenew: T0,
      connectionInfo: `nc ${input.challengeId} 1337`,
      flags: input.sourceId === 'two-flags' ? ['a', 'b'] : ['FLAG{x}'],
      additional: input.additional,
    };
    this.instances.set(`${input.challengeId}/${input.sourceId}`, instance);
    return Promise.resolve(instance);
  }
  retrieve(challengeId: string, sourceId: string): Promise<Instance> {
    const i = this.instances.get(`${challengeId}/${sourceId}`);
    return i
      ? Promise.resolve(i)
      : Promise.reject(new InstanceNotFoundError(challengeId, sourceId));
  }
  async *query(sourceId: string): AsyncIterable<Instance> {
    for (const i of this.instances.values()) {
      await Promise.resolve();
      if (i.sourceId === sourceId) yield i;
    }
  }
  renew(challengeId: string, sourceId: string): Promise<Instance> {
    this.renewed.push(`${challengeId}/${sourceId}`);
    return this.retrieve(challengeId, sourceId);
  }
  async delete(challengeId: string, sourceId: string): Promise<void> {
    await this.retrieve(challengeId, sourceId);
    this.instances.delete(`${challengeId}/${sourceId}`);
  }
}

interface Booted {
  app: NestExpressApplication;
  base: string;
  address: string;
  store: FakeChallengeStore;
  instances: FakeInstanceManager;
  scratch: string;
}

/** Boots the app as main.ts does, with the two services replaced by fakes. */
async function boot(env: Record<string, string> = {}): Promise<Booted> {
  const scratch = mkdtempSync(join(tmpdir(), 'cm-api-'));
  const port = await freePort();
  const config = AppConfig.fromEnv({
    PORT: String(port),
    DIR: join(scratch, 'data'),
    CACHE: join(scratch, 'cache'),
    LOG_LEVEL: 'error',
    ...env,
  });
  const store = new FakeChallengeStore();
  const instances = new FakeInstanceManager();
  const moduleRef = await Test.createTestingModule({
    // TransportModule is imported by AppModule; naming it again is harmless and explicit.
    imports: [AppModule.forRoot(config), TransportModule],
  })
    .overrideProvider(ChallengeStoreService)
    .useValue(store)
    .overrideProvider(InstanceManagerService)
    .useValue(instances)
    .compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({
    ...API_APP_OPTIONS,
    logger: false,
  });
  await startApiServer(app, port, '127.0.0.1');
  return {
    app,
    base: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    store,
    instances,
    scratch,
  };
}

async function shutdown(b: Booted | undefined): Promise<void> {
  if (!b) return;
  await b.app.close();
  rmSync(b.scratch, { recursive: true, force: true });
}

const errorInfoOf = (body: { details: Record<string, unknown>[] }): Record<string, unknown> => {
  const info = body.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.ErrorInfo');
  expect(info).toBeDefined();
  return info ?? {};
};

/** Calls a gRPC method expecting a failure; returns the ServiceError. */
async function grpcFailure(call: Promise<unknown>): Promise<ServiceError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e as ServiceError,
  );
  expect(err).toBeDefined();
  return err as ServiceError;
}

describe('API transport on one port', () => {
  let b: Booted;
  let grpc: ApiClients;

  beforeAll(async () => {
    b = await boot();
    grpc = connectApiClients(b.address);
  });
  afterAll(async () => {
    grpc?.close();
    await shutdown(b);
  });

  const rest = (path: string, init?: RequestInit): Promise<Response> =>
    fetch(`${b.base}${path}`, init);
  const json = (method: string, body: unknown): RequestInit => ({
    method,
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

  describe('REST', () => {
    it('should create a challenge and answer protojson with nulls and int64 strings', async () => {
      const res = await rest(
        '/api/v1/challenge',
        json('POST', { id: 'c1', scenario: 'r/s:1', timeout: null, updateStrategy: 'recreate' }),
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        id: 'c1',
        scenario: 'r/s:1',
        timeout: null,
        until: null,
        instances: [],
        additional: {},
        min: '0',
        max: '0',
      });
    });

    it('should answer 409 with ErrorInfo and an "already exist" message when the id is taken', async () => {
      const res = await rest('/api/v1/challenge', json('POST', { id: 'c1', scenario: 'r/s:1' }));
      expect(res.status).toBe(409);
      const body = (await res.json()) as { code: number; message: string; details: [] };
      expect(body.code).toBe(6);
      expect(body.message).toContain('already exist');
      expect(errorInfoOf(body)).toEqual({
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'CHALLENGE_ALREADY_EXISTS',
        domain: 'github.com/ctfer-io/chall-manager',
        metadata: { id: 'c1' },
      });
    });

    it('should retrieve a challenge and answer 404 CHALLENGE_NOT_FOUND for an unknown one', async () => {
      expect((await rest('/api/v1/challenge/c1')).status).toBe(200);
      const res = await rest('/api/v1/challenge/nope');
      expect(res.status).toBe(404);
      const body = (await res.json()) as { code: number; details: [] };
      expect(body.code).toBe(5);
      expect(errorInfoOf(body).reason).toBe('CHALLENGE_NOT_FOUND');
    });

    it('should pass the update mask and the path id to the service', async () => {
      const res = await rest(
        '/api/v1/challenge/c1',
        json('PATCH', { id: 'ignored', timeout: '600s', until: null, updateMask: 'timeout,until' }),
      );
      expect(res.status).toBe(200);
      expect(b.store.lastUpdate).toMatchObject({
        id: 'c1',
        timeoutMs: 600_000,
        mask: new Set(['timeout', 'until']),
      });
    });

    it('should answer 400 INVALID_ARGUMENT naming updateMask when it has underscores', async () => {
      const res = await rest(
        '/api/v1/challenge/c1',
        json('PATCH', { updateMask: 'update_strategy' }),
      );
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: number; message: string };
      expect(body.code).toBe(3);
      expect(body.message).toContain('updateMask');
    });

    it('should answer 400 CHALLENGE_INVALID_UPDATE_MASK for an unknown path', async () => {
      const res = await rest('/api/v1/challenge/c1', json('PATCH', { updateMask: 'nope' }));
      expect(res.status).toBe(400);
      expect(errorInfoOf((await res.json()) as { details: [] }).reason).toBe(
        'CHALLENGE_INVALID_UPDATE_MASK',
      );
    });

    it('should answer 400 INVALID_ARGUMENT for malformed JSON', async () => {
      const res = await rest('/api/v1/challenge', json('POST', '{"id":'));
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: number; details: [] };
      expect(body.code).toBe(3);
      expect(errorInfoOf(body).reason).toBe('INVALID_ARGUMENT');
    });

    it('should answer 400 INVALID_ARGUMENT for a body over 1 MiB', async () => {
      const big = { id: 'big', scenario: 'x'.repeat(1024 * 1024 + 10) };
      const res = await rest('/api/v1/challenge', json('POST', big));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: number }).code).toBe(3);
    });

    it('should parse a JSON body whatever its content type', async () => {
      const res = await rest('/api/v1/challenge', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ id: 'c-text', scenario: 's' }),
      });
      expect(res.status).toBe(200);
    });

    it('should answer 500 with the generic message and no internal text', async () => {
      const res = await rest('/api/v1/challenge', json('POST', { id: 'crash', scenario: 's' }));
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).not.toContain('secret');
      expect(JSON.parse(text)).toMatchObject({ code: 13, message: 'An internal error occurred.' });
    });

    it('should stream challenges as chunked NDJSON result lines', async () => {
      const res = await rest('/api/v1/challenge');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(res.headers.get('transfer-encoding')).toBe('chunked');
      const lines = (await res.text()).trim().split('\n');
      const results = lines.map((l) => (JSON.parse(l) as { result: { id: string } }).result.id);
      expect(results.sort()).toEqual(['c-text', 'c1']);
    });

    it('should end the stream with an error line and status 200 when it fails after an item', async () => {
      b.store.queryFailure = { after: 1, error: new ChallengeNotFoundError('gone') };
      try {
        const res = await rest('/api/v1/challenge');
        expect(res.status).toBe(200);
        const lines = (await res.text())
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as object);
        expect(lines).toHaveLength(2);
        expect(lines[0]).toHaveProperty('result');
        expect(lines[1]).toMatchObject({ error: { code: 5, message: 'Challenge not found.' } });
      } finally {
        b.store.queryFailure = undefined;
      }
    });

    it('should answer the mapped status and one error line when the stream fails first', async () => {
      b.store.queryFailure = { after: 0, error: new Error('secret') };
      try {
        const res = await rest('/api/v1/challenge');
        expect(res.status).toBe(500);
        const text = await res.text();
        expect(text.trim().split('\n')).toHaveLength(1);
        expect(JSON.parse(text)).toMatchObject({ error: { code: 13 } });
        expect(text).not.toContain('secret');
      } finally {
        b.store.queryFailure = undefined;
      }
    });

    it('should run the instance routes with upstream shapes', async () => {
      await rest('/api/v1/challenge', json('POST', { id: 'ci', scenario: 's' }));
      const created = await rest(
        '/api/v1/instance',
        json('POST', { challengeId: 'ci', sourceId: 'two-flags' }),
      );
      expect(created.status).toBe(200);
      const body = (await created.json()) as Record<string, unknown>;
      expect(body).toEqual({
        challengeId: 'ci',
        sourceId: 'two-flags',
        since: '2026-05-01T10:00:00.123Z',
        lastRenew: '2026-05-01T10:00:00.123Z',
        connectionInfo: 'nc ci 1337',
        flags: ['a', 'b'],
        additional: {},
      });

      const got = await rest('/api/v1/instance/ci/two-flags');
      expect(got.status).toBe(200);

      // RenewInstance accepts an empty body, as the CTFd plugin and upstream's gateway do.
      const renewed = await rest('/api/v1/instance/ci/two-flags', { method: 'PATCH' });
      expect(renewed.status).toBe(200);
      expect(b.instances.renewed).toContain('ci/two-flags');

      for (const key of ['sourceId', 'source_id']) {
        const listed = await rest(`/api/v1/instance?${key}=two-flags`);
        expect(listed.status).toBe(200);
        const lines = (await listed.text()).trim().split('\n');
        expect(lines.map((l) => (JSON.parse(l) as { result: unknown }).result)).toEqual([body]);
      }

      const deleted = await rest('/api/v1/instance/ci/two-flags', { method: 'DELETE' });
      expect(deleted.status).toBe(200);
      expect(await deleted.json()).toEqual({});

      const missing = await rest('/api/v1/instance/ci/two-flags');
      expect(missing.status).toBe(404);
      expect(errorInfoOf((await missing.json()) as { details: [] })).toMatchObject({
        reason: 'INSTANCE_NOT_FOUND',
        metadata: { challenge_id: 'ci', source_id: 'two-flags' },
      });
    });

    it('should answer 200 with an empty body when a stream has no item', async () => {
      const res = await rest('/api/v1/instance?sourceId=nobody');
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
    });

    it('should answer 404 "Not Found" with code 5 for an unknown route under /api/v1', async () => {
      const res = await rest('/api/v1/nope');
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ code: 5, message: 'Not Found', details: [] });
    });

    it('should answer the plain-text 404 outside the API', async () => {
      const res = await rest('/nope');
      expect(res.status).toBe(404);
      expect(await res.text()).toBe('404 page not found\n');
    });

    it('should answer 501 "Method Not Allowed" with code 12 for a wrong method', async () => {
      const res = await rest('/api/v1/challenge/c1', { method: 'PUT' });
      expect(res.status).toBe(501);
      expect(await res.json()).toEqual({ code: 12, message: 'Method Not Allowed', details: [] });
    });

    it('should still serve the healthcheck', async () => {
      const res = await rest('/healthcheck');
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'OK' });
    });

    it('should not serve Swagger when SWAGGER is off', async () => {
      expect((await rest('/swagger/swagger.json')).status).toBe(404);
    });

    it('should route a request whose first bytes arrive one at a time', async () => {
      const socket = netConnect(Number(new URL(b.base).port), '127.0.0.1');
      const answer = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('end', () => resolve(text));
      });
      const request = 'GET /healthcheck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      for (const part of [request.slice(0, 1), request.slice(1, 2), request.slice(2)]) {
        socket.write(part);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await answer).toMatch(/^HTTP\/1\.1 200 /);
    });

    it('should read a large body that spans many TCP packets', async () => {
      // 900 KB: read whole and parsed, since the answer names the one field over its limit
      // (`additional` holds at most 32 KiB).
      const additional = Object.fromEntries(
        Array.from({ length: 900 }, (_, i) => [`k${i}`, 'v'.repeat(1000)]),
      );
      const res = await rest('/api/v1/challenge', json('POST', { id: 'large', additional }));
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: number; message: string };
      expect([body.code, body.message]).toEqual([
        3,
        'invalid additional: keys and values together must be at most 32768 bytes',
      ]);
      // Within the limit, every entry arrives.
      const fits = Object.fromEntries(
        Array.from({ length: 30 }, (_, i) => [`k${i}`, 'v'.repeat(1000)]),
      );
      const ok = await rest('/api/v1/challenge', json('POST', { id: 'large', additional: fits }));
      expect(ok.status).toBe(200);
      expect(Object.keys(((await ok.json()) as { additional: object }).additional)).toHaveLength(
        30,
      );
    });

    it('should serve several requests on one keep-alive connection', async () => {
      for (let i = 0; i < 5; i++) expect((await rest('/healthcheck')).status).toBe(200);
    });
  });

  describe('gRPC', () => {
    it('should create and retrieve a challenge with proto-loader objects', async () => {
      const created = await grpc.unary(
        grpc.challenge,
        'CreateChallenge',
      )({
        id: 'g1',
        scenario: 'r/s:1',
        timeout: { seconds: '600', nanos: 0 },
        min: '1',
      });
      expect(created).toMatchObject({
        id: 'g1',
        timeout: { seconds: '600', nanos: 0 },
        until: null,
        min: '1',
        max: '0',
        instances: [],
      });
      const got = await grpc.unary(grpc.challenge, 'RetrieveChallenge')({ id: 'g1' });
      expect(got.id).toBe('g1');
    });

    it('should send code, message and ErrorInfo in grpc-status-details-bin like REST', async () => {
      const err = await grpcFailure(
        grpc.unary(grpc.challenge, 'CreateChallenge')({ id: 'g1', scenario: 'r/s:1' }),
      );
      expect(err.code).toBe(GrpcStatus.ALREADY_EXISTS);
      expect(err.details).toBe('Challenge already exists.');
      const status = statusDetails(err.metadata);
      expect(status?.code).toBe(6);
      expect(status?.details[0]).toEqual({
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'CHALLENGE_ALREADY_EXISTS',
        domain: 'github.com/ctfer-io/chall-manager',
        metadata: { id: 'g1' },
      });

      const rest409 = await rest('/api/v1/challenge', json('POST', { id: 'g1', scenario: 's' }));
      const restBody = (await rest409.json()) as { code: number; message: string };
      expect([restBody.code, restBody.message]).toEqual([err.code, err.details]);
    });

    it('should answer INVALID_ARGUMENT naming the field for an empty id', async () => {
      const err = await grpcFailure(grpc.unary(grpc.challenge, 'RetrieveChallenge')({ id: '' }));
      expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(err.details).toBe('invalid id: must not be empty');
      expect(statusDetails(err.metadata)?.details[1]).toMatchObject({
        fieldViolations: [{ field: 'id', reason: 'INVALID_ARGUMENT' }],
      });
    });

    it('should answer INTERNAL without internal text for unexpected failures', async () => {
      const err = await grpcFailure(
        grpc.unary(grpc.challenge, 'CreateChallenge')({ id: 'crash', scenario: 's' }),
      );
      expect(err.code).toBe(GrpcStatus.INTERNAL);
      expect(err.details).toBe('An internal error occurred.');
    });

    it('should stream challenges', async () => {
      const items = await grpc.stream(grpc.challenge, 'QueryChallenge')({});
      expect(items.map((c) => c.id)).toContain('g1');
    });

    it('should fail the stream with the mapped status when the service fails', async () => {
      b.store.queryFailure = { after: 1, error: new ChallengeNotFoundError('gone') };
      try {
        const err = await grpcFailure(grpc.stream(grpc.challenge, 'QueryChallenge')({}));
        expect(err.code).toBe(GrpcStatus.NOT_FOUND);
        expect(statusDetails(err.metadata)?.details[0]).toMatchObject({
          reason: 'CHALLENGE_NOT_FOUND',
        });
      } finally {
        b.store.queryFailure = undefined;
      }
    });

    it('should run the instance methods with optional fields unset', async () => {
      const created = await grpc.unary(
        grpc.instance,
        'CreateInstance',
      )({
        challengeId: 'g1',
        sourceId: 'one',
      });
      expect(created).toMatchObject({ challengeId: 'g1', sourceId: 'one', flag: 'FLAG{x}' });
      expect(created.since).toEqual({ seconds: '1777629600', nanos: 123_000_000 });
      expect(created.until).toBeUndefined();

      const listed = await grpc.stream(grpc.instance, 'QueryInstance')({ sourceId: 'one' });
      expect(listed).toHaveLength(1);
      await grpc.unary(grpc.instance, 'RenewInstance')({ challengeId: 'g1', sourceId: 'one' });
      expect(
        await grpc.unary(grpc.instance, 'DeleteInstance')({ challengeId: 'g1', sourceId: 'one' }),
      ).toEqual({});

      const err = await grpcFailure(
        grpc.unary(grpc.instance, 'RetrieveInstance')({ challengeId: 'g1', sourceId: 'one' }),
      );
      expect(err.code).toBe(GrpcStatus.NOT_FOUND);
      expect(statusDetails(err.metadata)?.details[1]).toMatchObject({
        resourceType: 'Instance',
        resourceName: 'g1/one',
      });
    });

    it('should not break on HTTP/2 requests that are not gRPC', async () => {
      const session = http2Connect(b.base);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = session.request({ ':path': '/healthcheck', ':method': 'GET' });
          req.on('response', (headers) => resolve(Number(headers[':status'])));
          req.on('error', reject);
          req.end();
        });
        expect(status).toBeGreaterThanOrEqual(400);
      } finally {
        session.close();
      }
      expect((await rest('/healthcheck')).status).toBe(200);
    });
  });
});

describe('Swagger', () => {
  let b: Booted | undefined;
  beforeAll(async () => {
    b = await boot({ SWAGGER: 'true' });
  });
  afterAll(() => shutdown(b));

  it('should serve the OpenAPI 2 document and the UI when SWAGGER is on', async () => {
    const doc = await fetch(`${b?.base}/swagger/swagger.json`);
    expect(doc.status).toBe(200);
    const body = (await doc.json()) as { swagger: string; paths: Record<string, unknown> };
    expect(body.swagger).toBe('2.0');
    expect(Object.keys(body.paths)).toContain('/api/v1/instance/{challengeId}/{sourceId}');
    const ui = await fetch(`${b?.base}/swagger/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });
});

import {
  credentials,
  loadPackageDefinition,
  status as grpcStatus,
  type Client,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { MetricData } from '@opentelemetry/sdk-metrics';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ApiApp } from '../support/api-app';
import { identityOfOutputsOnly, outputsOnlyScenario } from '../support/api-scenarios';
import { SseClient } from '../support/event-clients';
import { orasPush } from '../support/oras';
import { scenarioOf } from '../support/scenarios';
import { startInMemoryTelemetry } from '../support/in-memory-telemetry';
import { useToolchainPath } from '../support/toolchain';

/**
 * Flag records and the flag checker end to end (real Pulumi CLI, real registry, real files):
 * the flags of a deleted instance, and of one the janitor deleted when it expired, check as
 * valid for their source until FLAG_RETENTION ends, then not; another source's flag answers
 * `sharedFrom`; a second replica on the same DIR agrees; and no flag is left in clear under DIR,
 * in the service's logs or in its telemetry. Both transports.
 *
 * The telemetry SDK starts before the service's modules are loaded (imported dynamically below),
 * with in-memory exporters, as the telemetry e2e does.
 */

const { spans, reader } = startInMemoryTelemetry();

const LIVE = 'flags-live';
const EXPIRING = 'flags-expiring';
/** Short, so the test sees retention end; long enough for the checks right after a delete. */
const RETENTION = '12s';
const CHECK_LIMIT = 20;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** Every regular file under `root`. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) out.push(path);
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

/** api.v1.flag.FlagChecker client, loaded from our proto as a third-party client would. */
function flagClient(address: string): Client & Record<string, unknown> {
  const definition = loadSync(['api/v1/flag/flag.proto'], {
    includeDirs: [join(__dirname, '..', '..', 'proto')],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  let node: unknown = loadPackageDefinition(definition);
  for (const part of 'api.v1.flag.FlagChecker'.split('.')) {
    node = (node as Record<string, unknown>)[part];
  }
  return new (node as ServiceClientConstructor)(address, credentials.createInsecure());
}

interface CheckAnswer {
  valid: boolean;
  sharedFrom?: string;
}

/** Both transports of Check against one service. */
class Checker {
  private readonly grpc: Client & Record<string, unknown>;

  constructor(private readonly svc: ApiApp) {
    this.grpc = flagClient(svc.address);
  }

  async rest(body: Record<string, unknown>): Promise<{ status: number; json: unknown }> {
    const res = await this.svc.rest('/api/v1/flag/check', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  }

  grpcCall(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      (this.grpc.Check as (...args: unknown[]) => void).call(
        this.grpc,
        request,
        (err: ServiceError | null, res: Record<string, unknown>) =>
          err ? reject(err) : resolve(res),
      );
    });
  }

  /** The answer over `via`; a non-200 REST answer fails the test. */
  async check(
    via: 'REST' | 'gRPC',
    challengeId: string,
    sourceId: string,
    flag: string,
  ): Promise<CheckAnswer> {
    if (via === 'REST') {
      const { status, json } = await this.rest({ challengeId, sourceId, flag });
      expect(status, JSON.stringify(json)).toBe(200);
      return json as CheckAnswer;
    }
    const res = await this.grpcCall({ challengeId, sourceId, flag });
    // proto-loader's virtual oneof of a proto3 optional is not part of the answer.
    return res.sharedFrom === undefined || res.sharedFrom === ''
      ? { valid: res.valid as boolean }
      : { valid: res.valid as boolean, sharedFrom: res.sharedFrom as string };
  }

  close(): void {
    this.grpc.close();
  }
}

describe('flag records and checks', () => {
  let svc: ApiApp;
  let replica: ApiApp | undefined;
  let checker: Checker;
  let scratch: string;
  let scenario: string;
  let eventually: typeof import('../support/api-app').eventually;
  let jsonInit: typeof import('../support/api-app').jsonInit;
  /** Every flag any instance had, for the checks that none is left in clear. */
  const allFlags: string[] = [];

  const createInstance = async (
    via: 'REST' | 'gRPC',
    challengeId: string,
    sourceId: string,
  ): Promise<{ identity: string; flags: string[] }> => {
    const out =
      via === 'REST'
        ? ((await (
            await svc.rest('/api/v1/instance', jsonInit('POST', { challengeId, sourceId }))
          ).json()) as Record<string, unknown>)
        : await svc.grpc.unary(svc.grpc.instance, 'CreateInstance')({ challengeId, sourceId });
    expect(out).toMatchObject({ challengeId, sourceId });
    const flags = out.flags as string[];
    allFlags.push(...flags);
    return { identity: identityOfOutputsOnly(out.connectionInfo), flags };
  };
  const recordPath = (challengeId: string, identity: string): string =>
    join(svc.dir, 'flag', md5(challengeId), `${identity}.json`);
  const retrieveStatus = async (challengeId: string, sourceId: string): Promise<number> => {
    const res = await svc.rest(`/api/v1/instance/${challengeId}/${sourceId}`);
    await res.text();
    return res.status;
  };

  let teamA: { identity: string; flags: string[] };
  let teamB: { identity: string; flags: string[] };

  beforeAll(async () => {
    useToolchainPath();
    scratch = mkdtempSync(join(tmpdir(), 'cm-flags-'));
    scenario = await orasPush(
      inject('registry'),
      'flags/outputs-only:v1',
      scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('flags')),
    );
    const support = await import('../support/api-app');
    eventually = support.eventually;
    jsonInit = support.jsonInit;
    svc = await support.bootApiApp({
      LOG_LEVEL: 'debug',
      JANITOR_TICKER: '1s',
      FLAG_RETENTION: RETENTION,
      FLAG_CHECK_LIMIT: String(CHECK_LIMIT),
      FLAG_CHECK_WINDOW: '1h',
    });
    checker = new Checker(svc);
    for (const body of [
      { id: LIVE, scenario, timeout: '600s', additional: { flags: '2' } },
      { id: EXPIRING, scenario, timeout: '3s' },
    ]) {
      const res = await svc.rest('/api/v1/challenge', jsonInit('POST', body));
      expect(res.status, await res.text()).toBe(200);
    }
    teamA = await createInstance('REST', LIVE, 'team-a');
    teamB = await createInstance('gRPC', LIVE, 'team-b');
    expect(teamA.flags).toHaveLength(2);
  });

  afterAll(async () => {
    checker?.close();
    await replica?.close();
    await svc?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('should answer valid for the source’s own flags and sharedFrom for another source’s, over both transports', async () => {
    for (const via of ['REST', 'gRPC'] as const) {
      for (const flag of teamA.flags) {
        expect(await checker.check(via, LIVE, 'team-a', flag)).toEqual({ valid: true });
      }
      expect(await checker.check(via, LIVE, 'team-b', teamB.flags[0]!)).toEqual({ valid: true });
      expect(await checker.check(via, LIVE, 'team-b', teamA.flags[1]!)).toEqual({
        valid: false,
        sharedFrom: 'team-a',
      });
      expect(await checker.check(via, LIVE, 'team-a', 'PLUGIN{guessed}')).toEqual({
        valid: false,
      });
      // A flag of one challenge says nothing about another.
      expect(await checker.check(via, EXPIRING, 'team-a', teamA.flags[0]!)).toEqual({
        valid: false,
      });
    }
    // Each sharing (one per transport) is a flag.shared event naming both sources, by id only.
    const sse = await SseClient.open(svc.base, `?challengeId=${LIVE}&after=0`);
    try {
      await eventually(
        'the two flag.shared events',
        10_000,
        () => sse.events.filter((e) => e.type === 'flag.shared').length === 2,
        () => JSON.stringify(sse.events.map((e) => e.type)),
      );
      for (const event of sse.events.filter((e) => e.type === 'flag.shared')) {
        expect(event.raw).toMatchObject({ sourceId: 'team-b', sharedFrom: 'team-a' });
        for (const flag of allFlags) expect(JSON.stringify(event.raw)).not.toContain(flag);
      }
    } finally {
      await sse.close();
    }
  });

  it('should accept the proto field names in the REST body, as the gateway does', async () => {
    const { status, json } = await checker.rest({
      challenge_id: LIVE,
      source_id: 'team-a',
      flag: teamA.flags[0],
    });
    expect(status).toBe(200);
    expect(json).toEqual({ valid: true });
  });

  it('should keep checking a deleted instance’s flags as valid until retention ends, then not', async () => {
    const deleted = await svc.rest(`/api/v1/instance/${LIVE}/team-a`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect(await retrieveStatus(LIVE, 'team-a')).toBe(404);
    const record = JSON.parse(readFileSync(recordPath(LIVE, teamA.identity), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(record).toMatchObject({ source_id: 'team-a', identity: teamA.identity });
    expect(record.deleted_at).toEqual(expect.any(String));

    expect(await checker.check('gRPC', LIVE, 'team-a', teamA.flags[0]!)).toEqual({ valid: true });
    expect(await checker.check('REST', LIVE, 'team-a', teamA.flags[1]!)).toEqual({ valid: true });
    expect(await checker.check('REST', LIVE, 'team-b', teamA.flags[0]!)).toEqual({
      valid: false,
      sharedFrom: 'team-a',
    });

    // The janitor (ticking every second) removes the record once retention has ended.
    await eventually(
      'the deleted instance’s flag record is purged',
      60_000,
      () => !existsSync(recordPath(LIVE, teamA.identity)),
    );
    for (const via of ['REST', 'gRPC'] as const) {
      expect(await checker.check(via, LIVE, 'team-a', teamA.flags[0]!)).toEqual({ valid: false });
      expect(await checker.check(via, LIVE, 'team-b', teamA.flags[0]!)).toEqual({ valid: false });
    }
    // The live instance's record stays.
    expect(existsSync(recordPath(LIVE, teamB.identity))).toBe(true);
  });

  it('should keep checking an expired instance’s flags as valid after the janitor deleted it, until retention ends', async () => {
    const teamC = await createInstance('REST', EXPIRING, 'team-c');
    await eventually(
      'the janitor deletes the expired instance',
      60_000,
      async () => (await retrieveStatus(EXPIRING, 'team-c')) === 404,
    );
    expect(await checker.check('REST', EXPIRING, 'team-c', teamC.flags[0]!)).toEqual({
      valid: true,
    });
    expect(await checker.check('gRPC', EXPIRING, 'team-d', teamC.flags[0]!)).toEqual({
      valid: false,
      sharedFrom: 'team-c',
    });
    await eventually(
      'the expired instance’s flag record is purged',
      60_000,
      () => !existsSync(recordPath(EXPIRING, teamC.identity)),
    );
    expect(await checker.check('gRPC', EXPIRING, 'team-c', teamC.flags[0]!)).toEqual({
      valid: false,
    });
  });

  it('should answer the same on a second replica sharing DIR', async () => {
    const { bootApiApp } = await import('../support/api-app');
    replica = await bootApiApp({ DIR: svc.dir, CACHE: svc.cache, JANITOR_TICKER: '0' });
    const second = new Checker(replica);
    try {
      expect(await second.check('gRPC', LIVE, 'team-b', teamB.flags[0]!)).toEqual({ valid: true });
      expect(await second.check('REST', LIVE, 'team-x', teamB.flags[0]!)).toEqual({
        valid: false,
        sharedFrom: 'team-b',
      });
    } finally {
      second.close();
    }
  });

  it('should refuse bad input with INVALID_ARGUMENT naming the field, over both transports', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ sourceId: 's', flag: 'f' }, 'challengeId'],
      [{ challengeId: LIVE, flag: 'f' }, 'sourceId'],
      [{ challengeId: LIVE, sourceId: 's' }, 'flag'],
      [{ challengeId: LIVE, sourceId: 's', flag: 'x'.repeat(1025) }, 'flag'],
    ];
    for (const [body, field] of cases) {
      const { status, json } = await checker.rest(body);
      expect(status).toBe(400);
      expect(JSON.stringify(json)).toContain(`"field":"${field}"`);
      const err = (await checker.grpcCall(body).then(
        () => undefined,
        (e: unknown) => e,
      )) as ServiceError | undefined;
      expect(err?.code).toBe(grpcStatus.INVALID_ARGUMENT);
      expect(err?.details).toContain(field);
    }
    // Not in the error, echoed or otherwise.
    const { json } = await checker.rest({ challengeId: LIVE, sourceId: 's', flag: 42 });
    expect(JSON.stringify(json)).toContain('"field":"flag"');
  });

  it('should refuse a source’s checks past FLAG_CHECK_LIMIT with FLAG_CHECK_RATE_LIMITED (HTTP 429, RESOURCE_EXHAUSTED)', async () => {
    for (let k = 0; k < CHECK_LIMIT; k++) {
      expect(await checker.check(k % 2 ? 'gRPC' : 'REST', LIVE, 'spammer', `PLUGIN{${k}}`)).toEqual(
        { valid: false },
      );
    }
    const { status, json } = await checker.rest({
      challengeId: LIVE,
      sourceId: 'spammer',
      flag: teamB.flags[0],
    });
    expect(status).toBe(429);
    expect(json).toMatchObject({
      code: grpcStatus.RESOURCE_EXHAUSTED,
      details: [expect.objectContaining({ reason: 'FLAG_CHECK_RATE_LIMITED' })],
    });
    const err = (await checker
      .grpcCall({ challengeId: LIVE, sourceId: 'spammer', flag: 'PLUGIN{x}' })
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as ServiceError | undefined;
    expect(err?.code).toBe(grpcStatus.RESOURCE_EXHAUSTED);
    // Other sources are not held back.
    expect(await checker.check('REST', LIVE, 'team-b', teamB.flags[0]!)).toEqual({ valid: true });
  });

  it('should leave no flag in clear under DIR, in the logs or in telemetry, and drop the records with the challenge', async () => {
    // While an instance lives its record holds its flags in clear, as upstream's does: the
    // search below finds what is there.
    const holdingLive = filesUnder(svc.dir)
      .filter((path) => readFileSync(path).toString('latin1').includes(teamB.flags[0]!))
      .map((path) => relative(svc.dir, path));
    console.info(`files holding a live instance's flag: ${holdingLive.join(', ')}`);
    expect(holdingLive).toContain(
      join('chall', md5(LIVE), 'instance', teamB.identity, 'info.json'),
    );

    const deleted = await svc.rest(`/api/v1/instance/${LIVE}/team-b`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect(allFlags.length).toBeGreaterThanOrEqual(4);

    // The records of team-b's deleted instance are still there (retention), as hashes only.
    expect(existsSync(recordPath(LIVE, teamB.identity))).toBe(true);
    const keyFile = join(svc.dir, 'flag', 'key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const files = filesUnder(svc.dir);
    expect(files.length).toBeGreaterThan(0);
    const holding = files.filter((path) => {
      const bytes = readFileSync(path).toString('latin1');
      return allFlags.some((flag) => bytes.includes(flag));
    });
    expect(holding.map((p) => relative(svc.dir, p))).toEqual([]);

    const logs = svc.logs() + (replica?.logs() ?? '');
    expect(logs).toContain('flag sharing: source team-b submitted a flag of source team-a');
    for (const flag of allFlags) expect(logs.includes(flag), 'a flag in the logs').toBe(false);

    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const metrics: MetricData[] = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const checkSpans = spans.getFinishedSpans().filter((s) => s.name === 'check-flag');
    expect(checkSpans.length).toBeGreaterThan(0);
    const telemetry = JSON.stringify([
      spans.getFinishedSpans().map((s) => [s.name, s.attributes, s.events, s.status]),
      metrics.map((m) => [m.descriptor, m.dataPoints]),
    ]);
    for (const flag of allFlags) {
      expect(telemetry.includes(flag), 'a flag in telemetry').toBe(false);
    }

    const gone = await svc.rest(`/api/v1/challenge/${LIVE}`, { method: 'DELETE' });
    expect(gone.status).toBe(200);
    expect(existsSync(join(svc.dir, 'flag', md5(LIVE)))).toBe(false);
    expect(await checker.check('REST', LIVE, 'team-b', teamB.flags[0]!)).toEqual({ valid: false });
  });
});

import { SpanKind } from '@opentelemetry/api';
import type { DataPoint, Histogram, MetricData } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ApiApp } from '../support/api-app';
import { outputsOnlyScenario } from '../support/api-scenarios';
import { orasPush } from '../support/oras';
import { startInMemoryTelemetry } from '../support/in-memory-telemetry';
import { scenarioOf } from '../support/scenarios';
import { useToolchainPath } from '../support/toolchain';

/**
 * Traces, metrics and logs of a lifecycle against the real service (real Pulumi, registry and
 * files), with the SDK's in-memory exporters. The SDK starts before the service's modules are
 * loaded (they are imported dynamically below), as `src/telemetry/preload.ts` does in main.ts.
 *
 * Lifecycle: challenge min=1 max=1 (one pooled instance) → instance A over REST (claimed from the
 * pool, with a caller's traceparent) → instance B over gRPC (pool empty, max reached: fresh) →
 * delete B. Then a second app on the same DIR reports the gauges before any request.
 */

const { spans, reader } = startInMemoryTelemetry();

const CHALLENGE = 'telemetry';
const ADDITIONAL_SECRET = 'CHALLENGE-ADDITIONAL-SECRET-7f3a';
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

// The tiny scenario, which also prints its flags and additional: Pulumi turns a program's output
// into diagnostics, which the service logs at debug (redacted).
function leakyScenario(): Record<string, string> {
  const files = outputsOnlyScenario('telemetry');
  files['index.js'] +=
    "console.log('leak: flags=' + exports.flags.join(',') + ' additional=' + JSON.stringify(additional) + ' info=' + exports.connection_info);\n";
  return files;
}

async function collect(): Promise<MetricData[]> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

function points(all: MetricData[], name: string): DataPoint<unknown>[] {
  return all
    .filter((m) => m.descriptor.name === name)
    .flatMap((m): DataPoint<unknown>[] => m.dataPoints);
}

/** The one element of `list`. */
function one<T>(list: T[], what: string): T {
  expect(list, what).toHaveLength(1);
  return list[0]!;
}

function gauge(all: MetricData[], name: string, attrs: Record<string, unknown> = {}): number {
  const found = points(all, name).filter((p) =>
    Object.entries(attrs).every(([k, v]) => p.attributes[k] === v),
  );
  return one(found, `${name} ${JSON.stringify(attrs)}`).value as number;
}

function histogramCount(all: MetricData[], name: string, attrs: Record<string, unknown>): number {
  return points(all, name)
    .filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))
    .reduce((n, p) => n + (p.value as Histogram).count, 0);
}

const byId = (): Map<string, ReadableSpan> =>
  new Map(spans.getFinishedSpans().map((s) => [s.spanContext().spanId, s]));

/** The chain of ancestors of `span` (parent first) among the finished spans. */
function ancestors(span: ReadableSpan): ReadableSpan[] {
  const all = byId();
  const chain: ReadableSpan[] = [];
  let parent = span.parentSpanContext?.spanId;
  while (parent !== undefined && all.has(parent)) {
    const s = all.get(parent)!;
    chain.push(s);
    parent = s.parentSpanContext?.spanId;
  }
  return chain;
}

/** Finished spans named `name` that descend from `root`. */
function descendants(root: ReadableSpan, name: string): ReadableSpan[] {
  return spans.getFinishedSpans().filter((s) => s.name === name && ancestors(s).includes(root));
}

/** An HTTP server span of `method` on `path`. */
const rest =
  (method: string, path: string) =>
  (s: ReadableSpan): boolean =>
    s.attributes['http.request.method'] === method && s.attributes['url.path'] === path;

function serverSpan(pred: (s: ReadableSpan) => boolean): ReadableSpan {
  const found = spans.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER && pred(s));
  return one(found, 'server span');
}

describe('telemetry of a lifecycle', () => {
  let svc: ApiApp;
  let restarted: ApiApp | undefined;
  let scratch: string;
  let flags: string[] = [];
  let afterCreates: MetricData[];
  let afterRestart: MetricData[];
  let sweepMetrics: MetricData[];
  const logLines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);

  beforeAll(async () => {
    useToolchainPath();
    scratch = mkdtempSync(join(tmpdir(), 'cm-telemetry-'));
    const scenario = await orasPush(
      inject('registry'),
      'telemetry/leaky:v1',
      scenarioOf(scratch, 'leaky', leakyScenario()),
    );
    const { bootApiApp, jsonInit } = await import('../support/api-app');
    const { BackgroundTasks } = await import('../../src/shared/background-tasks');
    const { JanitorScheduler } = await import('../../src/janitor/janitor.scheduler');

    // Every line the service logs (LOG_LEVEL=debug; errors go to stderr), kept off the output.
    const capture = (chunk: string | Uint8Array): boolean => {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    };
    process.stdout.write = capture;
    process.stderr.write = capture;
    try {
      svc = await bootApiApp({ JANITOR_TICKER: '0', LOG_LEVEL: 'debug' });
      const created = await svc.rest(
        '/api/v1/challenge',
        jsonInit('POST', {
          id: CHALLENGE,
          scenario,
          timeout: '600s',
          min: 1,
          max: 1,
          additional: { note: ADDITIONAL_SECRET },
        }),
      );
      expect(created.status, await created.text()).toBe(200);
      await svc.app.get(BackgroundTasks).drain(); // the pooled instance is up

      const a = await svc.rest('/api/v1/instance', {
        ...jsonInit('POST', { challengeId: CHALLENGE, sourceId: 'team-a' }),
        headers: {
          'content-type': 'application/json',
          traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
        },
      });
      expect(a.status).toBe(200);
      const instanceA = (await a.json()) as { flags: string[] };
      const instanceB = (await svc.grpc.unary(
        svc.grpc.instance,
        'CreateInstance',
      )({ challengeId: CHALLENGE, sourceId: 'team-b' })) as { flags: string[] };
      flags = [...instanceA.flags, ...instanceB.flags];
      afterCreates = await collect();

      const deleted = await svc.rest(`/api/v1/instance/${CHALLENGE}/team-b`, { method: 'DELETE' });
      expect(deleted.status).toBe(200);
      await svc.app.get(BackgroundTasks).drain();
      // A failure, for the `failures` counter.
      expect((await svc.rest('/api/v1/challenge/missing')).status).toBe(404);

      // A restart: the first app goes (its files stay), a second one serves the same DIR.
      svc.grpc.close();
      await svc.app.close();
      restarted = await bootApiApp({
        JANITOR_TICKER: '0',
        LOG_LEVEL: 'debug',
        DIR: svc.dir,
        CACHE: svc.cache,
      });
      afterRestart = await collect();
      await restarted.app.get(JanitorScheduler).tick();
      sweepMetrics = await collect();
      const gone = await restarted.rest(`/api/v1/challenge/${CHALLENGE}`, { method: 'DELETE' });
      expect(gone.status).toBe(200);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
  });

  afterAll(async () => {
    await restarted?.close();
    if (svc) rmSync(svc.scratch, { recursive: true, force: true });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('should give each RPC a server span with lock wait, pull and Pulumi child spans when a challenge and instances are created', () => {
    const createChallenge = serverSpan(rest('POST', '/api/v1/challenge'));
    const validation = descendants(createChallenge, 'scenario.validation');
    expect(one(validation, 'validation').attributes.reference).toMatch(/telemetry\/leaky:v1$/);
    expect(descendants(createChallenge, 'scenario.pull').length).toBeGreaterThanOrEqual(1);
    expect(descendants(createChallenge, 'lock.wait').length).toBeGreaterThanOrEqual(1);

    // REST, claimed from the pool: no Pulumi work in the request, in the caller's trace.
    const createA = serverSpan(rest('POST', '/api/v1/instance'));
    expect(createA.spanContext().traceId).toBe(CALLER_TRACE);
    expect(createA.parentSpanContext?.spanId).toBe(CALLER_SPAN);
    const opA = one(descendants(createA, 'create-instance'), 'opA');
    expect(opA.attributes).toMatchObject({
      challenge_id: CHALLENGE,
      source_id: 'team-a',
      pool: true,
    });
    expect(opA.attributes.identity).toMatch(/^[0-9a-f]{16}$/);
    const locksA = descendants(opA, 'lock.wait');
    expect(locksA.map((s) => s.attributes['lock.kind'])).toEqual(
      expect.arrayContaining(['source', 'challenge']),
    );
    expect(opA.events.map((e) => e.name)).toEqual(
      expect.arrayContaining(['lock source', 'locked source', 'unlocked source']),
    );
    expect(descendants(opA, 'pulumi.up')).toHaveLength(0);

    // gRPC, fresh: the RPC span is the parent chain of the create, its locks, pull and up.
    const createB = serverSpan((s) => s.name.endsWith('InstanceManager/CreateInstance'));
    const opB = one(descendants(createB, 'create-instance'), 'opB');
    expect(opB.attributes).toMatchObject({ challenge_id: CHALLENGE, source_id: 'team-b' });
    expect(descendants(opB, 'lock.wait').length).toBeGreaterThanOrEqual(2);
    const up = one(descendants(opB, 'pulumi.up'), 'up');
    expect(up.attributes).toMatchObject({
      challenge_id: CHALLENGE,
      identity: opB.attributes.identity,
    });

    const deleteB = serverSpan(rest('DELETE', `/api/v1/instance/${CHALLENGE}/team-b`));
    const destroy = one(descendants(deleteB, 'pulumi.destroy'), 'destroy');
    expect(destroy.attributes).toMatchObject({
      challenge_id: CHALLENGE,
      identity: opB.attributes.identity,
    });
    // No output of a stack on any span.
    const everything = JSON.stringify(
      spans.getFinishedSpans().map((s) => [s.attributes, s.events]),
    );
    for (const flag of flags) expect(everything).not.toContain(flag);
  });

  it('should report the instances by pool and the operation histograms when instances are claimed and created', () => {
    expect(gauge(afterCreates, 'challenges')).toBe(1);
    expect(gauge(afterCreates, 'instances', { challenge: CHALLENGE, pool: false })).toBe(2);
    expect(gauge(afterCreates, 'instances', { challenge: CHALLENGE, pool: true })).toBe(0);
    expect(histogramCount(afterCreates, 'instance.claim.duration', { outcome: 'ok' })).toBe(1);
    expect(histogramCount(afterCreates, 'instance.create.duration', { outcome: 'ok' })).toBe(1);
    expect(histogramCount(afterCreates, 'iac.up.duration', { outcome: 'ok' })).toBe(2);
    expect(histogramCount(afterCreates, 'lock.wait.duration', { outcome: 'ok' })).toBeGreaterThan(
      4,
    );
  });

  it('should report process and host metrics from nestjs-otel when metrics are collected', () => {
    expect(gauge(afterCreates, 'process.memory.usage')).toBeGreaterThan(0);
    expect(
      gauge(afterCreates, 'process.cpu.time', { 'process.cpu.state': 'user' }),
    ).toBeGreaterThan(0);
    expect(
      gauge(afterCreates, 'system.memory.usage', { 'system.memory.state': 'used' }),
    ).toBeGreaterThan(0);
    expect(points(afterCreates, 'system.cpu.utilization').length).toBeGreaterThan(0);
  });

  it('should report the gauges from disk before any request when the service restarts', () => {
    expect(gauge(afterRestart, 'challenges')).toBe(1);
    expect(gauge(afterRestart, 'instances', { challenge: CHALLENGE, pool: false })).toBe(1);
    expect(gauge(afterRestart, 'instances', { challenge: CHALLENGE, pool: true })).toBe(0);
    expect(histogramCount(afterRestart, 'instance.delete.duration', { outcome: 'ok' })).toBe(1);
    expect(histogramCount(afterRestart, 'iac.destroy.duration', { outcome: 'ok' })).toBe(1);
    expect(
      gauge(afterRestart, 'failures', { reason: 'CHALLENGE_NOT_FOUND' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('should count janitor sweeps when the janitor runs', () => {
    expect(gauge(sweepMetrics, 'janitor.sweeps', { outcome: 'ok' })).toBe(1);
  });

  it('should log JSON lines with trace ids and never a flag or an additional value when the lifecycle runs at debug level', () => {
    expect(flags).toHaveLength(2);
    const entries = logLines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries.length).toBeGreaterThan(10);
    // Pulumi's diagnostics (the program's own output) were logged, redacted.
    expect(logLines.some((l) => l.includes('leak: flags=[REDACTED]'))).toBe(true);
    for (const secret of [...flags, ADDITIONAL_SECRET]) {
      expect(logLines.filter((l) => l.includes(secret))).toEqual([]);
    }
    const traced = entries.filter((e) => e.trace_id === CALLER_TRACE);
    expect(traced.length).toBeGreaterThanOrEqual(1);
    expect(traced[0]?.span_id).toMatch(/^[0-9a-f]{16}$/);
  });
});

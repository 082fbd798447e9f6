import { Logger } from '@nestjs/common';
import { context, metrics, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import {
  TracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace';
import { MetricService, TraceService } from 'nestjs-otel';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  aChallenge,
  anInstance,
  aPooledInstance,
  anIdentity,
} from '../../../test/support/builders';
import { FakeIacEngine } from '../../../test/support/fakes/fake-iac-engine';
import { InMemoryOciRegistry } from '../../../test/support/fakes/in-memory-oci-registry';
import { InMemoryStateStore } from '../../../test/support/fakes/in-memory-state-store';
import { servicesUnderTest } from '../../../test/support/services-under-test';
import { lockKeys } from '../../shared/domain';
import { TraceLogger } from '../../shared/logging';
import { DistributedLock, StateStore } from '../../shared/ports';
import { ServiceMetrics } from '../../shared/telemetry';
import { InMemoryDistributedLock } from '../lock/in-memory-distributed-lock.adapter';
import { StateGauges } from './state-gauges';
import { TracedDistributedLock } from './traced-distributed-lock';
import { TracedIacEngine } from './traced-iac-engine';
import { TracedOciRegistry } from './traced-oci-registry';

class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(
  new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] }),
);
const reader = new TestReader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

afterAll(() => {
  trace.disable();
  metrics.disable();
  context.disable();
});

const metricService = new MetricService();
const traced = (lock: DistributedLock): DistributedLock =>
  new TracedDistributedLock(lock, new TraceService(), new ServiceMetrics(metricService));

async function collect(): Promise<MetricData[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

const valueOf = (all: MetricData[], name: string, attrs: Record<string, unknown> = {}): unknown =>
  all
    .filter((m) => m.descriptor.name === name)
    .flatMap((m): { attributes: Record<string, unknown>; value: unknown }[] => m.dataPoints)
    .find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))?.value;

/** How many durations a histogram holds for these attributes (0: none yet). */
const countOf = async (name: string, attrs: Record<string, unknown>): Promise<number> =>
  (valueOf(await collect(), name, attrs) as { count: number } | undefined)?.count ?? 0;

beforeEach(() => spans.reset());

describe('TracedDistributedLock', () => {
  it('should open a lock.wait child span that ends before the work runs when a lock is taken', async () => {
    const lock: DistributedLock = traced(new InMemoryDistributedLock());
    const tracer = trace.getTracer('test');
    let activeInWork: string | undefined;
    await tracer.startActiveSpan('rpc', async (rpc) => {
      await lock.withWriteLock(lockKeys.source('c', 's'), () => {
        activeInWork = trace.getActiveSpan()?.spanContext().spanId;
        expect(spans.getFinishedSpans().map((s) => s.name)).toEqual(['lock.wait']);
        return Promise.resolve();
      });
      rpc.end();
    });
    const [wait, rpc] = spans.getFinishedSpans();
    expect(wait?.parentSpanContext?.spanId).toBe(rpc?.spanContext().spanId);
    expect(wait?.attributes).toMatchObject({ 'lock.kind': 'source', 'lock.mode': 'write' });
    // The work runs in the caller's span, not in the ended wait span.
    expect(activeInWork).toBe(rpc?.spanContext().spanId);
    expect(rpc?.events.map((e) => e.name)).toEqual([
      'lock source',
      'locked source',
      'unlocked source',
    ]);
  });

  it('should end the wait span as not acquired when the wait is aborted', async () => {
    const inner = new InMemoryDistributedLock();
    const lock = traced(inner);
    const key = lockKeys.challenge('c');
    let release!: () => void;
    const held = inner.withWriteLock(key, () => new Promise<void>((r) => (release = r)));
    const controller = new AbortController();
    const waiting = lock.withReadLock(key, () => Promise.resolve(), controller.signal);
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    release();
    await held;
    const [wait] = spans.getFinishedSpans();
    expect(wait?.attributes['lock.acquired']).toBe(false);
    expect(await countOf('lock.wait.duration', { outcome: 'error' })).toBe(1);
  });
});

describe('TracedOciRegistry', () => {
  it('should open a scenario.resolve span with the reference and the digest when a reference is resolved', async () => {
    const inner = new InMemoryOciRegistry();
    const digest = inner.push('registry.local/scenario:v1');
    await expect(new TracedOciRegistry(inner).resolve('registry.local/scenario:v1')).resolves.toBe(
      digest,
    );
    const [span] = spans.getFinishedSpans();
    expect(span?.name).toBe('scenario.resolve');
    expect(span?.attributes).toEqual({ reference: 'registry.local/scenario:v1', digest });
  });
});

describe('TracedIacEngine', () => {
  it('should end pulumi.up as an error and record iac.up.duration with outcome error when up throws', async () => {
    const inner = new FakeIacEngine();
    inner.failNextUp();
    const iac = new TracedIacEngine(inner, new ServiceMetrics(metricService));
    const scenario = { reference: 'registry.local/s:v1', digest: 'sha256:00', directory: '/x' };
    await expect(
      iac.up({ challengeId: 'c', identity: 'i', scenario, additional: {} }),
    ).rejects.toThrow();
    const [up] = spans.getFinishedSpans();
    expect(up?.name).toBe('pulumi.up');
    expect(up?.attributes).toEqual({
      challenge_id: 'c',
      identity: 'i',
      reference: 'registry.local/s:v1',
    });
    expect(up?.status.code).toBe(SpanStatusCode.ERROR);
    expect(await countOf('iac.up.duration', { challenge: 'c', outcome: 'error' })).toBe(1);
  });
});

describe('InstanceManagerService spans', () => {
  beforeEach(() => vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined));
  afterEach(() => vi.restoreAllMocks());

  it('should put identity and pool=true on create-instance and count a claim when the instance comes from the pool', async () => {
    const sut = servicesUnderTest();
    await sut.givenChallenge({ id: 'pooled', min: 1, max: 1 });
    spans.reset();
    const claimed = await sut.instances.create({
      challengeId: 'pooled',
      sourceId: 'team',
      additional: {},
    });
    const op = spans.getFinishedSpans().find((s) => s.name === 'create-instance');
    expect(op?.attributes).toEqual({
      challenge_id: 'pooled',
      source_id: 'team',
      identity: claimed.identity,
      pool: true,
    });
    expect(await countOf('instance.claim.duration', { challenge: 'pooled', outcome: 'ok' })).toBe(
      1,
    );
    expect(await countOf('instance.create.duration', { challenge: 'pooled' })).toBe(0);
  });
});

describe('StateGauges', () => {
  it('should report challenges and instances by pool from the state when metrics are collected', async () => {
    const state = new InMemoryStateStore();
    await state.saveChallenge(aChallenge({ id: 'a' }));
    await state.saveChallenge(aChallenge({ id: 'b' }));
    await state.saveInstance(anInstance({ challengeId: 'a', identity: anIdentity(1) }));
    await state.saveInstance(aPooledInstance({ challengeId: 'a', identity: anIdentity(2) }));
    await state.saveInstance(aPooledInstance({ challengeId: 'a', identity: anIdentity(3) }));
    const gauges = new StateGauges(state, metricService);
    gauges.onModuleInit();
    try {
      const all = await collect();
      expect(valueOf(all, 'challenges')).toBe(2);
      expect(valueOf(all, 'instances', { challenge: 'a', pool: false })).toBe(1);
      expect(valueOf(all, 'instances', { challenge: 'a', pool: true })).toBe(2);
      expect(valueOf(all, 'instances', { challenge: 'b', pool: true })).toBe(0);
    } finally {
      gauges.onModuleDestroy();
    }
  });

  it('should read the state once when collections come within the cache period', async () => {
    let reads = 0;
    const state = new InMemoryStateStore();
    const counting = Object.assign(Object.create(state) as StateStore, {
      listChallenges: () => {
        reads++;
        return state.listChallenges();
      },
    });
    const gauges = new StateGauges(counting, metricService);
    gauges.onModuleInit();
    try {
      await collect();
      await collect();
      expect(reads).toBe(1);
    } finally {
      gauges.onModuleDestroy();
    }
    await collect();
    expect(reads).toBe(1);
  });
});

describe('TraceLogger', () => {
  it('should add trace_id and span_id to JSON lines when a span is active', () => {
    const lines: string[] = [];
    const logger = new TraceLogger({ json: true });
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk: string) => lines.push(chunk) > 0;
    let ids: { traceId: string; spanId: string } | undefined;
    try {
      logger.log('outside');
      trace.getTracer('test').startActiveSpan('rpc', (span) => {
        ids = span.spanContext();
        logger.log('inside', 'Ctx');
        span.end();
      });
    } finally {
      process.stdout.write = write;
    }
    const [outside, inside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(outside).not.toHaveProperty('trace_id');
    expect(inside).toMatchObject({
      message: 'inside',
      context: 'Ctx',
      trace_id: ids?.traceId,
      span_id: ids?.spanId,
    });
  });
});

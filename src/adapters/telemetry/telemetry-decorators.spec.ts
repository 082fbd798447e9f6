import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import {
  TracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  aChallenge,
  anInstance,
  aPooledInstance,
  anIdentity,
} from '../../../test/support/builders';
import { InMemoryStateStore } from '../../../test/support/fakes/in-memory-state-store';
import { lockKeys } from '../../shared/domain';
import { TraceLogger } from '../../shared/logging';
import { DistributedLock, StateStore } from '../../shared/ports';
import { InMemoryDistributedLock } from '../lock/in-memory-distributed-lock.adapter';
import { StateGauges } from './state-gauges';
import { TracedDistributedLock } from './traced-distributed-lock';

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

async function collect(): Promise<MetricData[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

const valueOf = (all: MetricData[], name: string, attrs: Record<string, unknown> = {}): unknown =>
  all
    .filter((m) => m.descriptor.name === name)
    .flatMap((m): { attributes: Record<string, unknown>; value: unknown }[] => m.dataPoints)
    .find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))?.value;

beforeEach(() => spans.reset());

describe('TracedDistributedLock', () => {
  it('should open a lock.wait child span that ends before the work runs when a lock is taken', async () => {
    const lock: DistributedLock = new TracedDistributedLock(new InMemoryDistributedLock());
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
    const lock = new TracedDistributedLock(inner);
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
    const waits = valueOf(await collect(), 'lock.wait.duration', { outcome: 'error' }) as {
      count: number;
    };
    expect(waits.count).toBe(1);
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
    const gauges = new StateGauges(state);
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
    const gauges = new StateGauges(counting);
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

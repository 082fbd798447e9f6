import {
  SpanStatusCode,
  isSpanContextValid,
  metrics,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { SERVICE_NAME, SERVICE_VERSION } from '../version';

/**
 * The service's own spans and instruments, over the OpenTelemetry API: without an SDK (no
 * exporter configured) every call here is a no-op. Metric instruments are made on first use
 * per meter provider, since the API's meters are not proxies (a meter taken before the SDK
 * starts would stay a no-op).
 */

/** Span attribute names shared with upstream. */
export const ATTR = {
  challengeId: 'challenge_id',
  sourceId: 'source_id',
  identity: 'identity',
  reference: 'reference',
} as const;

export type DurationMetric =
  | 'instance.create.duration'
  | 'instance.claim.duration'
  | 'instance.renew.duration'
  | 'instance.delete.duration'
  | 'iac.up.duration'
  | 'iac.destroy.duration'
  | 'lock.wait.duration';

const DURATIONS: Record<DurationMetric, string> = {
  'instance.create.duration': 'CreateInstance that deployed a fresh instance',
  'instance.claim.duration': 'CreateInstance served from the pool',
  'instance.renew.duration': 'RenewInstance',
  'instance.delete.duration': 'DeleteInstance (players and janitor)',
  'iac.up.duration': 'one Pulumi up (create or update of a stack)',
  'iac.destroy.duration': 'one Pulumi destroy',
  'lock.wait.duration': 'time waiting for a distributed lock',
};

/** Seconds: from a lock taken at once to a slow deployment. */
const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

interface Instruments {
  durations: Record<DurationMetric, Histogram>;
  janitorSweeps: Counter;
  janitorDeleted: Counter;
  failures: Counter;
}

const byProvider = new WeakMap<MeterProvider, Instruments>();

function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  let found = byProvider.get(provider);
  if (found) return found;
  const meter = provider.getMeter(SERVICE_NAME, SERVICE_VERSION);
  const durations = {} as Record<DurationMetric, Histogram>;
  for (const [name, description] of Object.entries(DURATIONS) as [DurationMetric, string][]) {
    durations[name] = meter.createHistogram(name, {
      description: `Duration of ${description}`,
      unit: 's',
      advice: { explicitBucketBoundaries: BUCKETS },
    });
  }
  found = {
    durations,
    janitorSweeps: meter.createCounter('janitor.sweeps', {
      description: 'Janitor sweeps run (attribute outcome: ok|error)',
    }),
    janitorDeleted: meter.createCounter('janitor.deleted', {
      description: 'What janitor sweeps reclaimed (attribute kind: expired|drained|orphan|failed)',
    }),
    failures: meter.createCounter('failures', {
      description: 'Failed requests by reason (ErrorInfo reason, else the gRPC code)',
    }),
  };
  byProvider.set(provider, found);
  return found;
}

export function tracer(): Tracer {
  return trace.getTracer(SERVICE_NAME, SERVICE_VERSION);
}

/** Records a duration in seconds since `startedMs` (a `performance.now()` reading). */
export function recordDuration(
  metric: DurationMetric,
  startedMs: number,
  attributes: Attributes = {},
): void {
  instruments().durations[metric].record((performance.now() - startedMs) / 1000, attributes);
}

export function recordFailure(reason: string, transport: 'http' | 'grpc'): void {
  instruments().failures.add(1, { reason, transport });
}

export interface SweepCounts {
  deleted: number;
  drained: number;
  orphans: number;
  leaked: number;
  leftovers: number;
  failed: number;
}

export function recordSweep(report: SweepCounts | undefined): void {
  const i = instruments();
  i.janitorSweeps.add(1, { outcome: report ? 'ok' : 'error' });
  if (!report) return;
  const kinds: [string, number][] = [
    ['expired', report.deleted],
    ['drained', report.drained],
    ['orphan', report.orphans],
    ['leaked', report.leaked],
    ['leftover', report.leftovers],
    ['failed', report.failed],
  ];
  for (const [kind, n] of kinds) if (n > 0) i.janitorDeleted.add(n, { kind });
}

/**
 * Runs `work` in an active child span named `name`; a throw marks the span as an error and is
 * rethrown. The span ends when `work` settles.
 */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** What an instance use case tells {@link measureInstanceOp} while it runs. */
export interface InstanceOpProbe {
  /** The instance came from the pool: counted as a claim, not a create. */
  claimed(identity: string): void;
  identity(identity: string): void;
}

/**
 * Span `<op>-instance` (attributes challenge_id, source_id, identity when known) and the
 * duration histogram of the operation, with attribute outcome ok|error.
 */
export function measureInstanceOp<T>(
  op: 'create' | 'renew' | 'delete',
  challengeId: string,
  sourceId: string,
  work: (probe: InstanceOpProbe) => Promise<T>,
): Promise<T> {
  const started = performance.now();
  let metric: DurationMetric = `instance.${op}.duration`;
  return inSpan(
    `${op}-instance`,
    { [ATTR.challengeId]: challengeId, [ATTR.sourceId]: sourceId },
    async (span) => {
      const probe: InstanceOpProbe = {
        claimed: (identity) => {
          metric = 'instance.claim.duration';
          span.setAttributes({ [ATTR.identity]: identity, pool: true });
        },
        identity: (identity) => span.setAttribute(ATTR.identity, identity),
      };
      let outcome = 'error';
      try {
        const result = await work(probe);
        outcome = 'ok';
        return result;
      } finally {
        recordDuration(metric, started, { challenge: challengeId, outcome });
      }
    },
  );
}

/** Ids of the active span, for log lines; undefined outside any (valid) span. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  if (!ctx || !isSpanContextValid(ctx)) return undefined;
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

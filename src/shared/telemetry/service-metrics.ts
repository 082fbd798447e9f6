import { Injectable } from '@nestjs/common';
import { trace, type Attributes, type Histogram } from '@opentelemetry/api';
import { MetricService } from 'nestjs-otel/lib/metrics/metric.service';
import { ATTR } from './telemetry';

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

/** What an instance use case tells {@link ServiceMetrics.instanceOp} while it runs. */
export interface InstanceOpProbe {
  /** The instance came from the pool: counted as a claim, not a create. */
  claimed(identity: string): void;
  identity(identity: string): void;
}

export interface SweepCounts {
  deleted: number;
  drained: number;
  orphans: number;
  leaked: number;
  leftovers: number;
  failed: number;
}

/**
 * The service's own histograms and counters, taken from nestjs-otel's MetricService (which
 * makes each instrument once, by name, on the meter provider the SDK registered). What stays
 * here is what its metric decorators cannot say: `@OtelMethodCounter` counts calls without
 * attributes, and the param decorators only reach route handlers, while these instruments carry
 * attributes known only when the work ends (outcome, claimed or created, what a sweep reclaimed).
 * Without an SDK every call is a no-op.
 */
@Injectable()
export class ServiceMetrics {
  constructor(private readonly metrics: MetricService) {}

  /** Records a duration in seconds since `startedMs` (a `performance.now()` reading). */
  recordDuration(metric: DurationMetric, startedMs: number, attributes: Attributes = {}): void {
    this.histogram(metric).record((performance.now() - startedMs) / 1000, attributes);
  }

  /**
   * Runs `work` and records its duration with attribute outcome ok|error, in `metric` (read when
   * the work ends: a create served from the pool is counted as a claim).
   */
  async timed<T>(
    metric: DurationMetric | (() => DurationMetric),
    attributes: Attributes,
    work: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    let outcome = 'error';
    try {
      const result = await work();
      outcome = 'ok';
      return result;
    } finally {
      const name = typeof metric === 'function' ? metric() : metric;
      this.recordDuration(name, started, { ...attributes, outcome });
    }
  }

  /**
   * The duration histogram of an instance operation (attributes challenge, outcome), and what
   * the operation learns on the way (identity; claimed from the pool) on the active span, the
   * `<op>-instance` span its `@Span` opened.
   */
  instanceOp<T>(
    op: 'create' | 'renew' | 'delete',
    challengeId: string,
    work: (probe: InstanceOpProbe) => Promise<T>,
  ): Promise<T> {
    const span = trace.getActiveSpan();
    let metric: DurationMetric = `instance.${op}.duration`;
    const probe: InstanceOpProbe = {
      claimed: (identity) => {
        metric = 'instance.claim.duration';
        span?.setAttributes({ [ATTR.identity]: identity, pool: true });
      },
      identity: (identity) => span?.setAttribute(ATTR.identity, identity),
    };
    return this.timed(
      () => metric,
      { challenge: challengeId },
      () => work(probe),
    );
  }

  /** `failures`: the ErrorInfo reason (else the gRPC code's name) of a failed request. */
  recordFailure(reason: string, transport: 'http' | 'grpc'): void {
    this.metrics
      .getCounter('failures', {
        description: 'Failed requests by reason (ErrorInfo reason, else the gRPC code)',
      })
      .add(1, { reason, transport });
  }

  /** `janitor.sweeps` (outcome ok|error) and what the sweep reclaimed in `janitor.deleted`. */
  recordSweep(report: SweepCounts | undefined): void {
    this.metrics
      .getCounter('janitor.sweeps', {
        description: 'Janitor sweeps run (attribute outcome: ok|error)',
      })
      .add(1, { outcome: report ? 'ok' : 'error' });
    if (!report) return;
    const deleted = this.metrics.getCounter('janitor.deleted', {
      description:
        'What janitor sweeps reclaimed (attribute kind: expired|drained|orphan|leaked|leftover|failed)',
    });
    const kinds: [string, number][] = [
      ['expired', report.deleted],
      ['drained', report.drained],
      ['orphan', report.orphans],
      ['leaked', report.leaked],
      ['leftover', report.leftovers],
      ['failed', report.failed],
    ];
    for (const [kind, n] of kinds) if (n > 0) deleted.add(n, { kind });
  }

  private histogram(metric: DurationMetric): Histogram {
    return this.metrics.getHistogram(metric, {
      description: `Duration of ${DURATIONS[metric]}`,
      unit: 's',
      advice: { explicitBucketBoundaries: BUCKETS },
    });
  }
}

import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { ObservableGauge, ObservableResult } from '@opentelemetry/api';
import { MetricService } from 'nestjs-otel/lib/metrics/metric.service';
import { IacEngine } from '../../shared/ports';

/**
 * The `iac.pending_creates` gauge: resources whose creation a dead Pulumi process left pending
 * (they may still run, unseen by Pulumi), read from DIR at collection time like the state gauges,
 * so every replica reports the same number. Alert on anything above 0.
 */
@Injectable()
export class PendingCreatesGauge implements OnModuleInit, OnModuleDestroy {
  private gauge: ObservableGauge | undefined;

  private readonly observe = async (result: ObservableResult): Promise<void> => {
    const pending = await this.iac.pendingCreates().catch(() => undefined);
    if (pending !== undefined) result.observe(pending.length);
  };

  constructor(
    private readonly iac: IacEngine,
    private readonly metrics: MetricService,
  ) {}

  onModuleInit(): void {
    this.gauge = this.metrics.getObservableGauge('iac.pending_creates', {
      description: 'Resources whose creation was interrupted and that Pulumi lost track of',
    });
    this.gauge.addCallback(this.observe);
  }

  onModuleDestroy(): void {
    this.gauge?.removeCallback(this.observe);
    this.gauge = undefined;
  }
}

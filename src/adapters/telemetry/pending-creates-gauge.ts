import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { metrics, type ObservableGauge, type ObservableResult } from '@opentelemetry/api';
import { IacEngine } from '../../shared/ports';
import { SERVICE_NAME, SERVICE_VERSION } from '../../shared/version';

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

  constructor(private readonly iac: IacEngine) {}

  onModuleInit(): void {
    this.gauge = metrics
      .getMeter(SERVICE_NAME, SERVICE_VERSION)
      .createObservableGauge('iac.pending_creates', {
        description: 'Resources whose creation was interrupted and that Pulumi lost track of',
      });
    this.gauge.addCallback(this.observe);
  }

  onModuleDestroy(): void {
    this.gauge?.removeCallback(this.observe);
    this.gauge = undefined;
  }
}

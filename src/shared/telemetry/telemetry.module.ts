import { Global, Injectable, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { createNoopMeter, metrics } from '@opentelemetry/api';
import type * as HostMetricsModule from '@opentelemetry/host-metrics';
// nestjs-otel's services and decorators come from their own files, not from the package's index:
// the index loads its module, which requires the host metrics collector and, through it,
// systeminformation (80 modules) even when no metric is ever exported.
import { MetricService } from 'nestjs-otel/lib/metrics/metric.service';
import { TraceService } from 'nestjs-otel/lib/tracing/trace.service';
import { ServiceMetrics } from './service-metrics';

/**
 * The host metrics nestjs-otel's module started (process and system CPU, memory and network), on
 * the meter provider the SDK registered. Without one the global provider is the API's no-op one,
 * whose meters record nothing: the collector is then neither loaded nor started.
 */
@Injectable()
export class HostMetricsStarter implements OnApplicationBootstrap {
  onApplicationBootstrap(): void {
    const meterProvider = metrics.getMeterProvider();
    if (meterProvider.getMeter('host-metrics').constructor === createNoopMeter().constructor)
      return;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { HostMetrics } = require('@opentelemetry/host-metrics') as typeof HostMetricsModule;
    new HostMetrics({ meterProvider, name: 'host-metrics' }).start();
  }
}

/**
 * nestjs-otel's MetricService and TraceService, the host metrics, and the service's own
 * instruments. Global, as telemetry is: every context and adapter may record. The SDK itself is
 * started before Nest by `src/telemetry/preload.ts`; nestjs-otel does not start one.
 */
@Global()
@Module({
  providers: [MetricService, TraceService, HostMetricsStarter, ServiceMetrics],
  exports: [MetricService, TraceService, ServiceMetrics],
})
export class TelemetryModule {}

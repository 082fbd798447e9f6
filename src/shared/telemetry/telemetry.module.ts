import { Global, Module } from '@nestjs/common';
import { OpenTelemetryModule } from 'nestjs-otel';
import { ServiceMetrics } from './service-metrics';

/**
 * nestjs-otel's module (its MetricService and TraceService, and the host metrics: process and
 * system CPU, memory and network, on the SDK's meter provider) plus the service's own
 * instruments. Global, as telemetry is: every context and adapter may record. The SDK itself is
 * started before Nest by `src/telemetry/preload.ts`; nestjs-otel does not start one.
 */
@Global()
@Module({
  imports: [OpenTelemetryModule.forRoot({ metrics: { hostMetrics: true } })],
  providers: [ServiceMetrics],
  exports: [ServiceMetrics],
})
export class TelemetryModule {}

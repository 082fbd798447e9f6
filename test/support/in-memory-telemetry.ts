import { MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { telemetryEnvFrom } from '../../src/config/telemetry-env';
import { startTelemetry } from '../../src/telemetry/otel';

/** A metric reader that collects on demand only (`reader.collect()`). */
class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/**
 * Starts the telemetry SDK with in-memory exporters, as `src/telemetry/preload.ts` starts it in
 * main.ts. Call it before the service's modules are loaded (import them dynamically after), so
 * that what they instrument is seen. No OTEL_* variable: every signal goes to these exporters.
 */
export function startInMemoryTelemetry(): { spans: InMemorySpanExporter; reader: MetricReader } {
  const spans = new InMemorySpanExporter();
  const reader = new TestReader();
  startTelemetry(telemetryEnvFrom({}), {
    spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    metricReaders: [reader],
  });
  return { spans, reader };
}

import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import type { LogRecordProcessor } from '@opentelemetry/sdk-logs';
import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import type { TelemetryEnv } from '../config/telemetry-env';
import { SERVICE_VERSION } from '../shared/version';

/** Replaces what a signal exports (tests: in-memory exporters); unset signals follow `env`. */
export interface TelemetryOverrides {
  spanProcessors?: SpanProcessor[];
  metricReaders?: IMetricReader[];
  logRecordProcessors?: LogRecordProcessor[];
}

let sdk: NodeSDK | undefined;

/**
 * Starts the OpenTelemetry SDK: HTTP, express and gRPC instrumentation (one server span per
 * RPC on both transports, W3C trace context and baggage accepted from callers), and the
 * exporters the standard `OTEL_*` variables ask for (see TelemetryEnv: nothing without an
 * endpoint or an exporter). Exports go through batch processors and periodic readers with the
 * SDK's export timeouts, so a slow or down collector never holds a request.
 *
 * Must run before Nest, express and grpc-js are loaded (`src/telemetry/preload.ts`). Idempotent.
 */
export function startTelemetry(env: TelemetryEnv, overrides: TelemetryOverrides = {}): void {
  if (sdk !== undefined || env.disabled) return;
  sdk = new NodeSDK({
    serviceName: env.serviceName,
    resource: defaultResource().merge(
      resourceFromAttributes({ 'service.version': SERVICE_VERSION }),
    ),
    instrumentations: [
      new HttpInstrumentation(),
      // Route names for the HTTP spans; the request handler span, not every middleware.
      new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE] }),
      new GrpcInstrumentation(),
    ],
    // An empty list switches a signal off; undefined lets the SDK build it from OTEL_*.
    spanProcessors: overrides.spanProcessors ?? (env.traces ? undefined : []),
    metricReaders: overrides.metricReaders ?? (env.metrics ? undefined : []),
    logRecordProcessors: overrides.logRecordProcessors ?? (env.logs ? undefined : []),
  });
  sdk.start();
}

/** Flushes and stops the SDK (bounded: a down collector cannot hold the exit). */
export async function shutdownTelemetry(timeoutMs = 3_000): Promise<void> {
  const running = sdk;
  sdk = undefined;
  if (running === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    running.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}

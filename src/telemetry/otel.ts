import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { type Instrumentation, registerInstrumentations } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import type { LogRecordProcessor } from '@opentelemetry/sdk-logs';
import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import type * as SdkNode from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  ParentBasedSampler,
  type SpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { TelemetryEnv } from '../config/telemetry-env';
import { SERVICE_VERSION } from '../shared/version';

/** Replaces what a signal exports (tests: in-memory exporters); unset signals follow `env`. */
export interface TelemetryOverrides {
  spanProcessors?: SpanProcessor[];
  metricReaders?: IMetricReader[];
  logRecordProcessors?: LogRecordProcessor[];
}

/** What startTelemetry started: the whole SDK, or only the tracer provider of the light path. */
interface Running {
  shutdown(): Promise<void>;
}

let sdk: Running | undefined;

function instrumentations(): Instrumentation[] {
  return [
    new HttpInstrumentation(),
    // Route names for the HTTP spans; the request handler span, not every middleware.
    new ExpressInstrumentation({ ignoreLayersType: [ExpressLayerType.MIDDLEWARE] }),
    new GrpcInstrumentation(),
  ];
}

/**
 * Without any export (the default), the only use of OpenTelemetry is the trace context: a
 * caller's traceparent continued by the server spans, and `trace_id`/`span_id` in the log lines.
 * That needs a tracer provider, a context manager, the W3C propagators and the instrumentations,
 * not the NodeSDK: loading it requires every exporter it can build from the environment (OTLP over
 * gRPC, HTTP and protobuf for three signals, Prometheus, Zipkin), which took about 0.5 s of the
 * start and 24 MiB of resident memory here.
 */
function startLight(serviceName: string | undefined): Running {
  const provider = new TracerProvider({
    // Nothing reads a span's attributes and events here: a span of the service's own (no
    // caller's trace, or an unsampled one) is not recorded, which spares every request the
    // work of building it, and still has ids for the log lines. A caller's sampled trace is
    // continued as sampled, for whatever it calls next.
    sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }),
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...(serviceName === undefined ? {} : { 'service.name': serviceName }),
        'service.version': SERVICE_VERSION,
      }),
    ),
  });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  );
  const unregister = registerInstrumentations({ instrumentations: instrumentations() });
  return {
    async shutdown() {
      unregister();
      await provider.shutdown();
    },
  };
}

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
  const exported =
    env.traces ||
    env.metrics ||
    env.logs ||
    overrides.spanProcessors !== undefined ||
    overrides.metricReaders !== undefined ||
    overrides.logRecordProcessors !== undefined;
  // Other propagators (B3, Jaeger) are the SDK's to build from OTEL_PROPAGATORS.
  if (!exported && !env.propagators) {
    sdk = startLight(env.serviceName);
    return;
  }
  // Loaded only here, synchronously: the instrumentations must patch before Nest is required.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof SdkNode;
  const nodeSdk = new NodeSDK({
    serviceName: env.serviceName,
    resource: defaultResource().merge(
      resourceFromAttributes({ 'service.version': SERVICE_VERSION }),
    ),
    instrumentations: instrumentations(),
    // An empty list switches a signal off; undefined lets the SDK build it from OTEL_*.
    spanProcessors: overrides.spanProcessors ?? (env.traces ? undefined : []),
    metricReaders: overrides.metricReaders ?? (env.metrics ? undefined : []),
    logRecordProcessors: overrides.logRecordProcessors ?? (env.logs ? undefined : []),
  });
  nodeSdk.start();
  sdk = nodeSdk;
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

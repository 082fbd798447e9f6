import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { metrics, trace } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api';

/** How long a shutdown waits for the last telemetry to leave (a down collector cannot hold it). */
export const FLUSH_TIMEOUT_MS = 2_000;

interface Flushable {
  forceFlush?: () => Promise<unknown>;
}

/** The registered provider behind the API's proxy, when it is one. */
const delegateOf = (provider: object): object =>
  'getDelegate' in provider && typeof provider.getDelegate === 'function'
    ? (provider.getDelegate as () => object).call(provider)
    : provider;

/**
 * Exports what the batch processors and periodic readers still hold when the service stops
 * (SIGTERM), bounded by {@link FLUSH_TIMEOUT_MS}. The SDK itself stays up (it is process-wide).
 */
@Injectable()
export class TelemetryFlush implements OnApplicationShutdown {
  async onApplicationShutdown(): Promise<void> {
    const providers: Flushable[] = [
      delegateOf(trace.getTracerProvider()),
      metrics.getMeterProvider(),
      delegateOf(logs.getLoggerProvider()),
    ];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(providers.map((p) => p.forceFlush?.() ?? Promise.resolve())),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
}

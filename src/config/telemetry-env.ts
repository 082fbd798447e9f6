/**
 * Which OpenTelemetry signals to export, from the standard `OTEL_*` variables.
 *
 * The SDK reads the rest of them itself (endpoints, protocol, headers, resource attributes,
 * batch and export timeouts, propagators); this only decides whether a signal is exported at
 * all, because the SDK's own default (OTLP to localhost) would export without being asked:
 * - `OTEL_<SIGNAL>_EXPORTER` set: its value decides (`none` turns the signal off);
 * - else the signal is exported (OTLP) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
 *   `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` is set;
 * - else nothing is exported.
 */
export interface TelemetryEnv {
  /** `OTEL_SDK_DISABLED=true`: no SDK at all. */
  disabled: boolean;
  traces: boolean;
  metrics: boolean;
  logs: boolean;
  /** OTEL_PROPAGATORS is set: the SDK builds the propagators it names (default: W3C trace context and baggage). */
  propagators: boolean;
  /** `chall-manager` unless OTEL_SERVICE_NAME or `service.name` in OTEL_RESOURCE_ATTRIBUTES. */
  serviceName: string | undefined;
}

type Env = Record<string, string | undefined>;

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

function signalOn(env: Env, signal: 'TRACES' | 'METRICS' | 'LOGS'): boolean {
  const exporters = env[`OTEL_${signal}_EXPORTER`];
  if (set(exporters)) {
    const list = exporters.split(',').map((e) => e.trim());
    return !list.includes('none') && list.some((e) => e !== '');
  }
  return set(env.OTEL_EXPORTER_OTLP_ENDPOINT) || set(env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]);
}

export function telemetryEnvFrom(env: Env): TelemetryEnv {
  const named =
    set(env.OTEL_SERVICE_NAME) ||
    /(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  return {
    disabled: env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true',
    traces: signalOn(env, 'TRACES'),
    metrics: signalOn(env, 'METRICS'),
    logs: signalOn(env, 'LOGS'),
    propagators: set(env.OTEL_PROPAGATORS),
    serviceName: named ? undefined : 'chall-manager',
  };
}

/** The process environment's telemetry settings (the only read of OTEL_* outside the SDK). */
export function telemetryEnvFromProcess(): TelemetryEnv {
  return telemetryEnvFrom(process.env);
}

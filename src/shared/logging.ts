import { ConsoleLogger, type LogLevel as NestLogLevel } from '@nestjs/common';
import { logs, SeverityNumber } from '@opentelemetry/api';
import type { LogLevel } from '../config';
import { activeTraceIds } from './telemetry/telemetry';
import { SERVICE_NAME } from './version';

const LEVELS: Record<LogLevel, NestLogLevel[]> = {
  debug: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
  info: ['fatal', 'error', 'warn', 'log'],
  warn: ['fatal', 'error', 'warn'],
  error: ['fatal', 'error'],
  dpanic: ['fatal', 'error'],
  panic: ['fatal', 'error'],
  fatal: ['fatal'],
};

const SEVERITY: Record<NestLogLevel, [SeverityNumber, string]> = {
  verbose: [SeverityNumber.TRACE, 'TRACE'],
  debug: [SeverityNumber.DEBUG, 'DEBUG'],
  log: [SeverityNumber.INFO, 'INFO'],
  warn: [SeverityNumber.WARN, 'WARN'],
  error: [SeverityNumber.ERROR, 'ERROR'],
  fatal: [SeverityNumber.FATAL, 'FATAL'],
};

type JsonLogOptions = Parameters<ConsoleLogger['getJsonLogObject']>[1];

/**
 * Nest's JSON console logger plus `trace_id` and `span_id` when a span is active, each entry
 * also emitted to the OpenTelemetry logs API (scope `chall-manager`; a no-op unless a logs
 * exporter is configured, which then correlates it with the active span itself).
 */
export class TraceLogger extends ConsoleLogger {
  protected override getJsonLogObject(
    message: unknown,
    options: JsonLogOptions,
  ): ReturnType<ConsoleLogger['getJsonLogObject']> &
    Partial<Record<'trace_id' | 'span_id', string>> {
    const entry = super.getJsonLogObject(message, options);
    const ids = activeTraceIds();
    const [severityNumber, severityText] = SEVERITY[options.logLevel];
    logs.getLogger(SERVICE_NAME).emit({
      severityNumber,
      severityText,
      body: typeof message === 'string' ? message : safeJson(message),
      attributes: options.context ? { context: options.context } : {},
    });
    return ids ? { ...entry, ...ids } : entry;
  }
}

/** JSON lines on stdout, one object per entry, at the configured minimum level. */
export function createLogger(level: LogLevel): ConsoleLogger {
  return new TraceLogger({ json: true, logLevels: LEVELS[level] });
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

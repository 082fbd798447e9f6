import { ConsoleLogger, type LogLevel as NestLogLevel } from '@nestjs/common';
import type { LogLevel } from '../config';

const LEVELS: Record<LogLevel, NestLogLevel[]> = {
  debug: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
  info: ['fatal', 'error', 'warn', 'log'],
  warn: ['fatal', 'error', 'warn'],
  error: ['fatal', 'error'],
  dpanic: ['fatal', 'error'],
  panic: ['fatal', 'error'],
  fatal: ['fatal'],
};

/** JSON lines on stdout, one object per entry, at the configured minimum level. */
export function createLogger(level: LogLevel): ConsoleLogger {
  return new ConsoleLogger({ json: true, logLevels: LEVELS[level] });
}

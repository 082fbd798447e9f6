/**
 * Imported first by `src/main.ts` (before Nest, express and grpc-js are required), so the
 * instrumentations can patch them. Also usable as `node --require ./dist/telemetry/preload.js`.
 */
import { telemetryEnvFromProcess } from '../config/telemetry-env';
import { startTelemetry } from './otel';

startTelemetry(telemetryEnvFromProcess());

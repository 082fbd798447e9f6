export * from './service-metrics';
export * from './telemetry';
export * from './telemetry.module';

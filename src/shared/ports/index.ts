export * from './clock.port';
export * from './distributed-lock.port';
export * from './health-indicator.port';
export * from './iac-engine.port';
export * from './oci-registry.port';
export * from './state-store.port';
export * from './readiness-probe.port';

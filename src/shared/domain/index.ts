export * from './challenge';
export * from './instance';
export * from './lock-keys';
export * from './record-names';
export * from './event';
export * from './readiness';

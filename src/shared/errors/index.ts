export * from './availability.errors';
export * from './challenge.errors';
export * from './domain-error';
export * from './error-code';
export * from './instance.errors';
export * from './oci.errors';
export * from './scenario.errors';
export * from './validation.errors';

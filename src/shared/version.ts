/** Reported by `/healthcheck` and telemetry; kept in step with package.json by the release. */
export const SERVICE_NAME = 'chall-manager';
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const SERVICE_VERSION: string = (require('../../package.json') as { version: string })
  .version;

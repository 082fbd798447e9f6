import { defineConfig } from 'vitest/config';

// End-to-end tests: real Pulumi CLI, real registry, real etcd, real files.
// The global set-up starts etcd and the registry (or uses the endpoints given to it).
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e-spec.ts'],
    environment: 'node',
    pool: 'forks',
    globalSetup: ['test/e2e/setup/global-setup.ts'],
    // Fails a file that leaves processes running (services, Pulumi's, scenario resources).
    setupFiles: ['test/e2e/setup/no-leftover-processes.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Pulumi runs are CPU-heavy and the machines have two cores.
    fileParallelism: false,
  },
});

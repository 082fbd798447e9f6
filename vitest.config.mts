import { defineConfig } from 'vitest/config';

// Unit tests: pure rules and services with in-memory doubles. No network, no real tools.
export default defineConfig({
  test: {
    include: ['src/**/*.spec.ts', 'test/unit/**/*.spec.ts', 'sdk/nodejs/src/**/*.spec.ts'],
    environment: 'node',
    pool: 'forks',
  },
});

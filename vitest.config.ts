import { defineConfig } from 'vitest/config';

// Node tests: the framework-free core, transports over worker_threads, slide reading.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});

import { defineConfig } from 'vitest/config';

// Browser tests: headless Debian Chromium with WebGPU (SwiftShader), driven by playwright-core.
export default defineConfig({
  test: {
    include: ['e2e/**/*.spec.ts'],
    environment: 'node',
    testTimeout: 600_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    globalSetup: ['e2e/global-setup.ts'],
  },
});

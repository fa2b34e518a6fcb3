// Starts one Vite dev server for all browser tests; its URL reaches the specs as SLIDE_LAB_URL.
// It also serves .fixtures/cohorts (cohorts the specs generate) under /test-cohorts with HTTP
// Range support, and under /test-cohorts-norange as a server without it.
import { mkdirSync } from 'node:fs';
import { startLabServer, type LabServer } from '../tools/lab-server.ts';

let server: LabServer | undefined;

const TEST_COHORTS_DIR = '.fixtures/cohorts';

export async function setup(): Promise<void> {
  const own = !process.env.SLIDE_LAB_URL;
  mkdirSync(TEST_COHORTS_DIR, { recursive: true });
  server = await startLabServer(own ? { serve: [{ prefix: '/test-cohorts', dir: TEST_COHORTS_DIR }, { prefix: '/test-cohorts-norange', dir: TEST_COHORTS_DIR, ranges: false }] } : {});
  process.env.SLIDE_LAB_URL = server.url;
  if (own) process.env.SLIDE_LAB_TEST_COHORTS = '1';
}

export async function teardown(): Promise<void> {
  await server?.close();
}

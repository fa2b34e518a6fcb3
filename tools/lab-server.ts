// Shared by the browser tests (e2e/), the headless runner (scripts/) and the browser benchmark (bench/).
// One way to reach the lab for browser tests, the headless runner and the browser benchmark:
// SLIDE_LAB_URL when set (an already running lab, e.g. on GPU CI), else Vite's dev server on a
// free loopback port, without file watching (an edit elsewhere must not reload a page mid-run).
import { createServer } from 'vite';

export interface LabServer {
  url: string;
  close(): Promise<void>;
}

export async function startLabServer(): Promise<LabServer> {
  const existing = process.env.SLIDE_LAB_URL;
  if (existing) return { url: existing, close: async () => undefined };
  const server = await createServer({ configFile: 'vite.config.ts', server: { port: 0, host: '127.0.0.1', watch: null, hmr: false }, logLevel: 'warn' });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite dev server did not report a port');
  return { url: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

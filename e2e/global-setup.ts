// Starts one Vite dev server for all browser tests; its URL reaches the specs as SLIDE_LAB_URL.
import { createServer, type ViteDevServer } from 'vite';

let server: ViteDevServer | undefined;

export async function setup(): Promise<void> {
  if (process.env.SLIDE_LAB_URL) return; // an already running lab (e.g. GPU CI against a preview build)
  server = await createServer({ configFile: 'vite.config.ts', server: { port: 0, host: '127.0.0.1', watch: null, hmr: false }, logLevel: 'warn' }); // no reloads mid-test
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite dev server did not report a port');
  process.env.SLIDE_LAB_URL = `http://127.0.0.1:${address.port}`;
}

export async function teardown(): Promise<void> {
  await server?.close();
}

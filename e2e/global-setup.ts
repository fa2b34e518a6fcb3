// Starts one Vite dev server for all browser tests; its URL reaches the specs as SLIDE_LAB_URL.
import { startLabServer, type LabServer } from '../tools/lab-server.ts';

let server: LabServer | undefined;

export async function setup(): Promise<void> {
  server = await startLabServer();
  process.env.SLIDE_LAB_URL = server.url;
}

export async function teardown(): Promise<void> {
  await server?.close();
}

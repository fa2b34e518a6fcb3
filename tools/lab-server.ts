// Shared by the browser tests (e2e/), the headless runner (scripts/) and the browser benchmark (bench/).
// One way to reach the lab for browser tests, the headless runner and the browser benchmark:
// SLIDE_LAB_URL when set (an already running lab, e.g. on GPU CI), else Vite's dev server on a
// free loopback port, without file watching (an edit elsewhere must not reload a page mid-run).
// `serve` mounts local folders (a cohort: manifest and slides) under a path, answering HTTP Range
// requests as any static server would (or, with ranges: false, ignoring them, for tests).
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve, sep } from 'node:path';
import { createServer, type Plugin } from 'vite';

export interface LabServer {
  url: string;
  close(): Promise<void>;
}

/** A local folder served under `prefix` (e.g. '/cohort'). */
export interface ServedFolder {
  prefix: string;
  dir: string;
  /** Answer Range requests (default true); false sends whole files with 200, like a server without range support. */
  ranges?: boolean;
}

/** A static file handler with byte ranges (bytes=a-b, a-, -n; one range per request). */
export function staticFiles(folder: ServedFolder): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const root = resolve(folder.dir);
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const file = resolve(root, `.${path}`);
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    const type = /\.csv$/i.test(file) ? 'text/csv; charset=utf-8' : /\.json$/i.test(file) ? 'application/json' : 'application/octet-stream';
    const headers: Record<string, string | number> = { 'content-type': type, 'cache-control': 'no-store', 'cross-origin-resource-policy': 'same-origin' };
    const ranges = folder.ranges ?? true;
    if (ranges) headers['accept-ranges'] = 'bytes';
    const m = ranges ? /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? '').trim()) : null;
    if (!m || (m[1] === '' && m[2] === '')) {
      res.writeHead(200, { ...headers, 'content-length': size });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return;
    }
    let start = m[1] === '' ? Math.max(0, size - Number(m[2])) : Number(m[1]);
    const end = m[1] === '' || m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2]));
    if (start >= size || start > end) {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` }).end();
      return;
    }
    start = Math.max(0, start);
    res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file, { start, end }).pipe(res);
  };
}

function servePlugin(folders: readonly ServedFolder[]): Plugin {
  return {
    name: 'slide-lab-served-folders',
    configureServer(server) {
      for (const f of folders) server.middlewares.use(f.prefix.replace(/\/+$/, ''), staticFiles(f));
    },
  };
}

export async function startLabServer(options: { serve?: ServedFolder[] } = {}): Promise<LabServer> {
  const existing = process.env.SLIDE_LAB_URL;
  if (existing && options.serve?.length) throw new Error(`SLIDE_LAB_URL is set (${existing}): a local folder (${options.serve[0].dir}) can only be served by the lab server this command starts; unset it, or serve the folder yourself with range support and pass data=manifest:<its URL>`);
  if (existing) return { url: existing, close: async () => undefined };
  const server = await createServer({ configFile: 'vite.config.ts', server: { port: 0, host: '127.0.0.1', watch: null, hmr: false }, logLevel: 'warn', plugins: options.serve?.length ? [servePlugin(options.serve)] : [] });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite dev server did not report a port');
  return { url: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

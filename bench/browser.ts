// npm run bench:browser -- [--json] [--batch 4] [--size 32] [--width 8] [--reps 2]
// The reduced browser benchmark: headless Chromium (Debian's, via playwright-core; SwiftShader
// WebGPU here, a real GPU with SLIDE_LAB_GPU=1) runs Conv2DBackpropFilter stock vs ours, layer by
// layer, on the page's own WebGPU device. Starts its own Vite dev server (or uses SLIDE_LAB_URL).
import { parseArgs } from 'node:util';
import os from 'node:os';
import { launch, chromiumArgs, CHROMIUM } from '../e2e/browser.ts';
import type { KernelRow } from './lib/kernel-bench.ts';
import { fmt, table } from './lib/stats.ts';
import { startLabServer } from '../e2e/dev-server.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    batch: { type: 'string', default: '4' },
    size: { type: 'string', default: '32' },
    width: { type: 'string', default: '8' },
    reps: { type: 'string', default: '2' },
    'timeout-s': { type: 'string', default: '900' },
  },
});
const opts = { batch: Number(values.batch), size: Number(values.size), width: Number(values.width), reps: Number(values.reps) };
for (const [k, v] of Object.entries(opts)) if (!Number.isInteger(v) || v < 1) { console.error(`bench:browser: --${k} must be a positive integer`); process.exit(2); }

const server = await startLabServer();
const base = server.url;
const browser = await launch();
const pageLog: string[] = [];
let code = 0;
try {
  const page = await browser.newPage();
  page.on('console', (m) => pageLog.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`[pageerror] ${e.message}`));
  await page.goto(`${base}/e2e/pages/kernels.html`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
  const t0 = performance.now();
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const out = (await Promise.race([
    page.evaluate((o) => (window as any).slideLabKernels.bench(o), opts),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)),
  ])) as { backend: { adapter: unknown }; rows: KernelRow[]; tfjs: string; userAgent: string };
  const doc = {
    kind: 'slide-lab-bench-browser',
    date: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, loadavg: os.loadavg() },
    browser: { executable: CHROMIUM, version: browser.version(), userAgent: out.userAgent, args: chromiumArgs() },
    adapter: out.backend.adapter,
    versions: { tfjs: out.tfjs },
    options: opts,
    kernels: out.rows,
  };
  if (values.json) console.log(JSON.stringify(doc, null, 2));
  else {
    console.log(`Chromium ${doc.browser.version}; adapter ${JSON.stringify(doc.adapter)}; ${doc.machine.cpu}, ${doc.machine.cores} cores`);
    console.log('\nConv2DBackpropFilter per layer in Chromium (median ms per call incl. sync)');
    console.log(table(['layer', 'x', 'filter', 'stock ms', 'ours ms', 'speed-up', 'ours ran', 'rel L2'],
      out.rows.map((k) => [k.layer, k.x.join('x'), k.filter.join('x'), fmt(k.stockMs), fmt(k.oursMs), `x${fmt(k.speedup, 2)}`, k.path, k.relL2.toExponential(1)])));
    console.log(`\n${fmt(doc.seconds)} s`);
  }
} catch (e) {
  console.error(`bench:browser failed: ${(e as Error).message}\npage said:\n${pageLog.join('\n')}`);
  code = 1;
} finally {
  await browser.close();
  await server.close();
}
process.exit(code);

// npm run bench:browser -- [--json] [--only kernels,decode] [--batch 4] [--size 32] [--width 8] [--reps 2]
//   [--decode-files .fixtures/slide/svs-rgb.svs,...] [--decode-paths native,js] [--decode-pool 1,2,4]
//   [--decode-tiles 192] [--decode-reps 3] [--decode-k 32] [--decode-ranks 1,2] [--decode-steps 3]
//   [--decode-tile-size 32] [--decode-backend cpu|webgpu] [--timeout-s 900]
//   [--soak-steps 1000] [--soak-ranks 2] [--stop-hash '#preset=first-look']   (--only soak, stop)
// The reduced browser benchmark: headless Chromium (Debian's, via playwright-core; SwiftShader
// WebGPU here, a real GPU with SLIDE_LAB_GPU=1). kernels: Conv2DBackpropFilter and
// Conv2DBackpropInput stock vs ours, layer by layer, on the page's own WebGPU device. decode: tile
// decode, native (createImageBitmap) and JS (geotiff), on the page's thread and in pools of Web
// Workers (bench/pages/bench-decode.ts); then engine steps on the demo slides (public/demo) with
// Web Worker ranks (native decode, tiny CNN w8, --decode-backend in the ranks and the page),
// prefetch on and off: decode ms on the critical path.
// Starts its own Vite dev server (or uses SLIDE_LAB_URL).
import os from 'node:os';
import { launch, chromiumArgs, CHROMIUM } from '../tools/chromium.ts';
import type { KernelRow } from './lib/kernel-bench.ts';
import { fmt, table } from './lib/stats.ts';
import { startLabServer } from '../tools/lab-server.ts';
import { ensureFixtures } from '../scripts/make-fixtures.ts';
import type { DecodeBenchResult } from './pages/bench-decode.ts';
import type { DecodePathRow } from './lib/engine-bench.ts';
import type { DecodePath } from './lib/decode-bench.ts';
import { argCheckers } from './lib/args.ts';
import { parseCli } from '../tools/cli.ts';
import { commandLine, describeMachine, makeRecord, writeRecord } from '../scripts/readme-figures.records.ts';
import type { SoakResult } from './pages/soak.ts';
import { runSoak, stopLatency, type StopSample } from './lib/soak-driver.ts';

const USAGE = `usage: npm run bench:browser -- [--json] [--only kernels,decode] [--batch 4] [--size 32] [--width 8] [--reps 2] [--timeout-s 900]
       [--decode-files a.svs,b.tiff] [--decode-paths native,js] [--decode-pool 1,2,4] [--decode-tiles 192] [--decode-reps 3]
       [--decode-k 32] [--decode-ranks 1,2] [--decode-steps 3] [--decode-tile-size 32] [--decode-backend cpu|webgpu]
       [--only soak,stop] [--soak-steps 1000] [--soak-ranks 2] [--stop-hash '#preset=first-look&subset=6']
       [--stop-at forward:start,aggregator:end,pause@forward:start,...]   (where in the step to click Stop, or Pause with pause@)
       [--record <series>]   also write the run as bench/results/<date>-<series>.json (README figures: npm run readme:figures)
Kernel and tile-decode benchmarks in headless Chromium (WebGPU; SwiftShader without a GPU, SLIDE_LAB_GPU=1 on one).`;

const { values } = parseCli(process.argv.slice(2), {
    json: { type: 'boolean', default: false },
    batch: { type: 'string', default: '4' },
    size: { type: 'string', default: '32' },
    width: { type: 'string', default: '8' },
    reps: { type: 'string', default: '2' },
    'timeout-s': { type: 'string', default: '900' },
    only: { type: 'string', default: 'kernels,decode' },
    'decode-files': { type: 'string', default: '.fixtures/slide/svs-rgb.svs,.fixtures/slide/svs-ycbcr.svs,.fixtures/slide/vips-pyramid.tiff,.fixtures/slide/bigtiff.tiff' },
    'decode-paths': { type: 'string', default: 'native,js' },
    'decode-pool': { type: 'string', default: '1,2,4' },
    'decode-tiles': { type: 'string', default: '192' },
    'decode-reps': { type: 'string', default: '3' },
    'decode-k': { type: 'string', default: '32' },
    'decode-ranks': { type: 'string', default: '1,2' },
    'decode-steps': { type: 'string', default: '3' },
    'decode-tile-size': { type: 'string', default: '32' },
    'decode-backend': { type: 'string', default: 'cpu' },
    record: { type: 'string' },
    'soak-steps': { type: 'string', default: '1000' },
    'soak-ranks': { type: 'string', default: '2' },
    'stop-hash': { type: 'string', default: '#preset=first-look&subset=6' },
    'stop-at': { type: 'string', default: 'forward:start,aggregator:end,forward:start,aggregator:end,pause@forward:start,pause@aggregator:end' },
}, USAGE) as unknown as { values: Record<string, string> & { json: boolean } };
const { fail, int, ints } = argCheckers('bench:browser', values as Record<string, unknown>, USAGE);
if (values.record !== undefined && !/^[a-z0-9][a-z0-9-]*$/.test(values.record)) fail(`--record takes a series name (lower-case words joined by '-'), got '${values.record}'`);
const only = new Set(values.only.split(','));
for (const o of only) if (!['kernels', 'decode', 'soak', 'stop'].includes(o)) fail(`--only takes kernels,decode,soak,stop; got '${o}'`);
const decodeOpts = {
  files: values['decode-files'].split(',').map((f) => `/${f.replace(/^\/+/, '')}`),
  paths: values['decode-paths'].split(',') as DecodePath[],
  pools: ints('decode-pool'),
  tiles: int('decode-tiles'),
  reps: int('decode-reps'),
};
const pathOpts = {
  shape: { encoder: 'tiny-cnn', width: 8, tileSize: int('decode-tile-size'), k: int('decode-k'), microBatch: 8, backend: values['decode-backend'] },
  ranks: ints('decode-ranks'),
  steps: int('decode-steps'),
  warmup: 1,
};
if (pathOpts.shape.backend !== 'cpu' && pathOpts.shape.backend !== 'webgpu') fail('--decode-backend takes cpu or webgpu');
if (decodeOpts.paths.some((p) => p !== 'native' && p !== 'js')) fail('--decode-paths takes native and/or js');
if (only.has('decode') && decodeOpts.files.some((f) => f.startsWith('/.fixtures/'))) await ensureFixtures();
const opts = { batch: int('batch'), size: int('size'), width: int('width'), reps: int('reps') };
const loadAtStart = os.loadavg();

const server = await startLabServer();
const base = server.url;
const browser = await launch();
const pageLog: string[] = [];
let code = 0;
try {
  const page = await browser.newPage();
  page.on('console', (m) => pageLog.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`[pageerror] ${e.message}`));
  const t0 = performance.now();
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const inPage = <T,>(run: () => Promise<T>): Promise<T> => Promise.race([
    run(),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)),
  ]);
  let out: { backend: { adapter: unknown }; rows: KernelRow[]; tfjs: string; userAgent: string } | undefined;
  if (only.has('kernels')) {
    await page.goto(`${base}/bench/pages/kernels.html`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
    out = await inPage(() => page.evaluate((o) => (window as any).slideLabKernels.bench(o), opts));
  }
  let decode: DecodeBenchResult | undefined;
  let criticalPath: { rows: DecodePathRow[]; slides: number } | undefined;
  if (only.has('decode')) {
    await page.goto(`${base}/bench/pages/bench-decode.html`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
    decode = await inPage(() => page.evaluate((o) => (window as any).slideLabDecodeBench.run(o), decodeOpts));
    criticalPath = await inPage(() => page.evaluate((o) => (window as any).slideLabDecodeBench.criticalPath(o), pathOpts));
  }
  let soak: SoakResult | undefined;
  let stop: StopSample[] | undefined;
  if (only.has('soak')) {
    const steps = int('soak-steps');
    const at = [...new Set([1, 2, 10, ...Array.from({ length: Math.floor(steps / 100) }, (_, i) => (i + 1) * 100), 500, steps].filter((s) => s <= steps))].sort((a, b) => a - b);
    // A tiny model on synthetic tiles: the run is about what piles up over the steps, not speed.
    const config = { seed: 7, tiles: 8, tileSize: 16, microBatch: 4, epochs: Math.ceil(steps / 12) + 1, encoder: { kind: 'tiny-cnn', width: 4 }, evalTiles: 8, backend: 'webgpu' };
    soak = await runSoak(page, base, { steps, ranks: int('soak-ranks'), at, config }, timeoutMs);
  }
  if (only.has('stop')) stop = await stopLatency(page, base, values['stop-hash'], values['stop-at'].split(','), 2, timeoutMs);
  const doc = {
    kind: 'slide-lab-bench-browser',
    date: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, loadavg: os.loadavg() },
    browser: { executable: CHROMIUM, version: browser.version(), userAgent: out?.userAgent ?? decode?.userAgent, args: chromiumArgs() },
    adapter: out?.backend.adapter,
    versions: { tfjs: out?.tfjs },
    options: { ...opts, only: [...only], decode: decodeOpts, criticalPath: pathOpts },
    kernels: out?.rows,
    decode,
    criticalPath,
    soak,
    stop,
  };
  if (values.record) {
    const { options, ...measured } = doc;
    const machine = describeMachine(`Chromium ${doc.browser.version}, adapter ${JSON.stringify(doc.adapter ?? null)}`);
    console.error(`record: ${writeRecord(makeRecord({ series: values.record, command: commandLine('bench:browser', process.argv.slice(2), ['SLIDE_LAB_GPU']), doc: measured, config: options, machine, loadAtStart }))}`);
  }
  if (values.json) console.log(JSON.stringify(doc, null, 2));
  else {
    console.log(`Chromium ${doc.browser.version}; adapter ${JSON.stringify(doc.adapter ?? null)}; ${doc.machine.cpu}, ${doc.machine.cores} cores; load ${doc.machine.loadavg.map((x) => x.toFixed(1)).join(' ')}`);
    if (out) {
      for (const name of ['Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const) {
        console.log(`\n${name} per layer in Chromium (median ms per call incl. sync)`);
        console.log(table(['layer', 'x', 'filter', 'stock ms', 'ours ms', 'speed-up', 'ours ran', 'rel L2'],
          out.rows.filter((k) => k.kernel === name).map((k) => [k.layer, k.x.join('x'), k.filter.join('x'), fmt(k.stockMs), fmt(k.oursMs), `x${fmt(k.speedup, 2)}`, k.path, k.relL2.toExponential(1)])));
      }
    }
    if (decode) {
      const t = decode.tileSet;
      console.log(`\ntile decode in Chromium (${t.tiles} tiles, ${t.sizes.join(', ')} JPEG, photometric ${t.photometric.join('/')}, ${t.meanCompressedBytes} B each, from ${t.files.join(', ')}; navigator.hardwareConcurrency ${decode.hardwareConcurrency}; median of the runs)`);
      console.log(table(['path', 'where', 'workers', 'tiles/run', 'tiles/s', 'runs', 'vs pool of 1', 'ms/tile in thread', 'native / JS tiles'],
        decode.rows.map((r) => {
          const one = decode!.rows.find((x) => x.path === r.path && x.mode === 'pool' && x.workers === 1);
          return [r.path, r.mode === 'pool' ? 'Web Worker pool' : 'page thread', r.workers || '-', r.tiles, fmt(r.tilesPerSec), r.runs.map((x) => fmt(x, 0)).join(' '), one ? `x${fmt(r.tilesPerSec / one.tilesPerSec, 2)}` : '-', fmt(r.msPerTileInWorker, 1), `${r.native} / ${r.fallback}`];
        })));
    }
    if (criticalPath) {
      const off = (n: number) => criticalPath!.rows.find((x) => x.ranks === n && !x.prefetch);
      const sh = pathOpts.shape;
      console.log(`\ndecode on the critical path in Chromium (engine on ${criticalPath.slides} demo slides, Web Worker ranks decoding natively; ${sh.encoder} w${sh.width}, ${sh.tileSize} px, ${sh.backend} backend; median per step)`);
      console.log(table(['N', 'prefetch', 'K', 'ms/step', 'decode ms on path', 'share', 'prefetched steps', 'forward ms', 'ms/step saved vs off'],
        criticalPath.rows.map((d) => [d.ranks, d.prefetch ? 'on' : 'off', d.k, fmt(d.stepMs), fmt(d.decodeMs), `${fmt(100 * d.decodeShare)}%`, `${d.prefetchedSteps}/${d.steps}`, fmt(d.forwardMs), d.prefetch && off(d.ranks) ? fmt(off(d.ranks)!.stepMs - d.stepMs) : '-'])));
    }
    if (soak) {
      console.log(`\nsoak in Chromium: ${soak.samples.at(-1)?.step} steps, ${soak.ranks.length} Web Worker ranks (${soak.ranks.map((r) => `${r.backend} ${r.adapter ?? ''}`.trim()).join(', ')}), main context ${soak.main.backend} (${soak.main.why}), ${soak.evals} validations, ${fmt(soak.seconds)} s`);
      console.log(table(['step', 'ms/step (median since last)', 'main tensors', 'main bytes', ...soak.ranks.flatMap((_, i) => [`rank ${i} tensors`, `rank ${i} bytes`]), 'page heap MiB'],
        soak.samples.map((x) => [x.step, fmt(x.stepMs), x.main.numTensors, x.main.numBytes, ...x.ranks.flatMap((r) => [r.numTensors, r.numBytes]), x.heap === null ? '-' : fmt(x.heap / 2 ** 20, 2)])));
    }
    if (stop) {
      console.log(`\nStop in the lab (${values['stop-hash']}): click to 'stopped' (workers disposed), measured in the page`);
      console.log(table(['clicked at', 'step', 'ms', 'checkpoint step', 'steps reported'], stop.map((x) => [x.phase, x.step, fmt(x.ms), x.checkpointStep ?? '-', x.stepsDone])));
    }
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

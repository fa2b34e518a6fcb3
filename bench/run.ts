// npm run bench -- [--json] [--backends cpu,webgpu]
//   [--encoder tiny-cnn|resnet|vit-s16|vit-b16|vit-l16|resnet50-trunc] [--width 8]
//   [--tile-size 32 (224 for the pretrained encoders)] [--k 16] [--ranks 1,2] [--micro-batch 8] [--steps 3] [--warmup 1]
//   [--throughput-modes engine,reference,encoder,frozen]
//   [--transport in-process|worker] [--memory-k 16,64,256] [--ref-cap-mb 48] [--memory-kernel fast|stock]
//   [--micro-batches 1,2,4] [--memory-max-seconds 600] [--memory-warm-max-seconds 300]
//   [--kernel-batch 4] [--kernel-size 64] [--kernel-reps 2]
//   [--decode-files .fixtures/slide/svs-rgb.svs,...] [--decode-pool 1,2,4] [--decode-tiles 192]
//   [--decode-reps 3] [--decode-k 32] [--decode-ranks 1,2]
//   [--only kernels,throughput,profile,memory,decode,comm]   (default: all but comm) [--record <series>]
// --record <series> also writes the run as a dated record, bench/results/<date>-<series>.json (scripts/readme-figures.records.ts).
// Sections: kernels (WebGPU only): Conv2DBackpropFilter/Input stock vs ours. throughput: engine,
// reference, encoder alone, frozen MIL (rows carry the communication share and bytes). profile:
// per-kernel time. memory: peak per-rank tensor bytes against --memory-k (micro-batched), its
// flatness (max/min), and the largest K the single-graph reference runs within the --ref-cap-mb
// budget (standing in for a GPU's memory), for tiny-cnn and resnet. For the pretrained encoders
// (vit-s16, vit-b16, vit-l16, resnet50-trunc; --encoder takes a comma-separated list when --only is
// memory) and each of --micro-batches: parameters, weights + gradient accumulator + AdamW moments
// (16 B per parameter, computed), the measured peak tensor bytes of one micro-batch's forward +
// backward (what Rank.shareOfGradient runs) above the weights, src/core/memory-estimate.ts's
// estimate beside it, and the micro-batch's wall time (a second, warm run when the first took at
// most --memory-warm-max-seconds); a row whose forward + backward is predicted (linear in the
// micro-batch from the previous row) to take more than --memory-max-seconds is skipped and says so
// (tiny-cnn and resnet get this table too when --micro-batches is given). On cpu every section uses our typed-array
// Conv2DBackpropFilter (src/kernels/cpu-kernels.ts; SLIDE_LAB_KERNELS=stock keeps tfjs's); the
// memory section first checks it against tfjs's (gradients and one peak; --memory-kernel stock
// measures with tfjs's).
// decode: JS tile decode in this thread and in worker_threads pools of --decode-pool sizes, then
// engine steps on the demo slides (public/demo, `npm run demo`) with worker ranks, prefetch on and
// off: decode ms left on the critical path. comm: engine steps only, for each of --ranks, with
// gather/scatter/reduce ms and bytes per step (e.g. --encoder resnet --k 256 --only comm).
// Node benchmarks of Slide Lab on the tfjs cpu backend and on real WebGPU through Dawn's Node
// bindings (npm `webgpu`; SwiftShader on a machine without a GPU). Prints a table, or one JSON
// document with --json. Figures only: nothing here asserts a timing.
import os from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { tf } from '../src/core/tf.ts';
import { setupNodeBackend } from '../src/runtime/node.ts';
import { nodeWorkerRanks } from '../src/transport/node-worker.ts';
import type { BackendInfo } from '../src/core/protocol.ts';
import { registerTrainingKernels, unregisterTrainingKernels, activeTrainingKernels } from '../src/kernels/index.ts';
import { benchFilterKernels, benchInputKernels, cnn4Layers, resnetLayers, type KernelRow } from './lib/kernel-bench.ts';
import {
  BENCH_ENCODERS, isPretrainedEncoder, type BenchEncoder,
  benchDecodeOnCriticalPath, benchEncoderOnly, benchEngine, benchReference, checkFastCpuFilterGrad, inProcess, useOurCpuKernels, largestReferenceK, profileEncoderStep, rankPeakBytes, referencePeakBytes,
  type BenchShape, type DecodePathRow, type KernelProfileRow, type MemoryRow, type RankFactory, type ThroughputRow,
} from './lib/engine-bench.ts';
import { fmt, table } from './lib/stats.ts';
import { encoderMemoryRows, encoderMemoryTable, type EncoderMemoryRow, type SkippedMemoryRow } from './lib/encoder-memory.ts';
import { argCheckers } from './lib/args.ts';
import { commandLine, describeMachine, makeRecord, writeRecord } from '../scripts/readme-figures.records.ts';
import { parseCli } from '../tools/cli.ts';
import { decodeRows, describeTiles, rawTilesOf, type DecodePort, type DecodeReply, type DecodeRow } from './lib/decode-bench.ts';
import { ensureFixtures } from '../scripts/make-fixtures.ts';
import { fromPath } from '../src/slide/node-open.ts';
import type { RawTile } from '../src/slide/decode-js.ts';
import type { SlideEntry } from '../src/core/sampler.ts';
import type { TileSourceSpec } from '../src/core/tiles.ts';
import type { DemoIndex } from '../src/slide/demo-index.ts';

const USAGE = `usage: npm run bench -- [--json] [--backends cpu,webgpu]
  [--encoder tiny-cnn|resnet|vit-s16|vit-b16|vit-l16|resnet50-trunc] [--width 8]
  [--tile-size 32 (224 for the pretrained encoders)] [--k 16] [--ranks 1,2] [--micro-batch 8] [--steps 3] [--warmup 1]
  [--throughput-modes engine,reference,encoder,frozen]
  [--transport in-process|worker] [--memory-k 16,64,256] [--ref-cap-mb 48] [--memory-kernel fast|stock]
  [--micro-batches 1,2,4] [--memory-max-seconds 600] [--memory-warm-max-seconds 300]
  [--kernel-batch 4] [--kernel-size 64] [--kernel-reps 2]
  [--decode-files .fixtures/slide/svs-rgb.svs,...] [--decode-pool 1,2,4] [--decode-tiles 192]
  [--decode-reps 3] [--decode-k 32] [--decode-ranks 1,2]
  [--only kernels,throughput,profile,memory,decode,comm]   (default: all but comm)
  [--record <series>]   also write the run as bench/results/<date>-<series>.json (README figures: npm run readme:figures)`;

const { values } = parseCli(process.argv.slice(2), {
    json: { type: 'boolean', default: false },
    backends: { type: 'string', default: 'cpu,webgpu' },
    encoder: { type: 'string', default: 'tiny-cnn' },
    'throughput-modes': { type: 'string', default: 'engine,reference,encoder,frozen' },
    'micro-batches': { type: 'string', default: '' },
    'memory-max-seconds': { type: 'string', default: '600' },
    'memory-warm-max-seconds': { type: 'string', default: '300' },
    width: { type: 'string', default: '8' },
    'tile-size': { type: 'string', default: '' },
    k: { type: 'string', default: '16' },
    ranks: { type: 'string', default: '1,2' },
    'micro-batch': { type: 'string', default: '8' },
    steps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    transport: { type: 'string', default: 'in-process' },
    'memory-k': { type: 'string', default: '16,64,256' },
    'ref-cap-mb': { type: 'string', default: '48' },
    'memory-kernel': { type: 'string', default: 'fast' },
    'kernel-batch': { type: 'string', default: '4' },
    'kernel-size': { type: 'string', default: '64' },
    'kernel-reps': { type: 'string', default: '2' },
    'decode-files': { type: 'string', default: '.fixtures/slide/svs-rgb.svs,.fixtures/slide/svs-ycbcr.svs,.fixtures/slide/vips-pyramid.tiff,.fixtures/slide/bigtiff.tiff' },
    'decode-pool': { type: 'string', default: '1,2,4' },
    'decode-tiles': { type: 'string', default: '192' },
    'decode-reps': { type: 'string', default: '3' },
    'decode-k': { type: 'string', default: '32' },
    'decode-ranks': { type: 'string', default: '1,2' },
    only: { type: 'string', default: 'kernels,throughput,profile,memory,decode' },
    record: { type: 'string' },
}, USAGE) as unknown as { values: Record<string, string> & { json: boolean } };

const { fail, int, ints } = argCheckers('bench', values as Record<string, unknown>, USAGE);
if (values.record !== undefined && !/^[a-z0-9][a-z0-9-]*$/.test(values.record)) fail(`--record takes a series name (lower-case words joined by '-'), got '${values.record}'`);
const encoders = values.encoder.split(',') as BenchEncoder[];
for (const e of encoders) if (!(BENCH_ENCODERS as readonly string[]).includes(e)) fail(`--encoder takes ${BENCH_ENCODERS.join(', ')} (a comma-separated list with --only memory); got '${e}'`);
if (!['fast', 'stock'].includes(values['memory-kernel'])) fail(`--memory-kernel must be fast or stock, got '${values['memory-kernel']}'`);
if (!['in-process', 'worker'].includes(values.transport)) fail(`--transport must be in-process or worker, got '${values.transport}'`);
const backends = values.backends.split(',');
if (backends.some((b) => b !== 'cpu' && b !== 'webgpu')) fail(`--backends must list cpu and/or webgpu, got '${values.backends}'`);
const only = new Set(values.only.split(','));
const SECTIONS = ['kernels', 'throughput', 'profile', 'memory', 'decode', 'comm'];
for (const o of only) if (!SECTIONS.includes(o)) fail(`--only takes ${SECTIONS.join(',')}; got '${o}'`);
if (encoders.length > 1 && [...only].some((o) => o !== 'memory')) fail(`--encoder takes several encoders only with --only memory; got '${values.encoder}' with --only ${values.only}`);
const scratchEncoders = encoders.filter((e) => !isPretrainedEncoder(e));
if (scratchEncoders.length > 1) fail(`the memory section's K sweep takes one of tiny-cnn and resnet; got '${values.encoder}'`);
const THROUGHPUT_MODES = ['engine', 'reference', 'encoder', 'frozen'];
const throughputModes = new Set(values['throughput-modes'].split(','));
for (const m of throughputModes) if (!THROUGHPUT_MODES.includes(m)) fail(`--throughput-modes takes ${THROUGHPUT_MODES.join(',')}; got '${m}'`);
const memoryMaxSeconds = Number(values['memory-max-seconds']);
if (!(memoryMaxSeconds > 0)) fail(`--memory-max-seconds must be a positive number, got '${values['memory-max-seconds']}'`);
const memoryWarmMaxSeconds = Number(values['memory-warm-max-seconds']);
if (!(memoryWarmMaxSeconds >= 0)) fail(`--memory-warm-max-seconds must be a number >= 0, got '${values['memory-warm-max-seconds']}'`);
/** --tile-size, or 224 for a pretrained encoder and 32 for the ones trained from scratch. */
const tileSizeOf = (e: BenchEncoder) => (values['tile-size'] ? int('tile-size') : isPretrainedEncoder(e) ? 224 : 32);
const microBatchList = values['micro-batches'] ? ints('micro-batches') : [1, 2, 4];
/** "tiny-cnn w8" for the encoders trained from scratch (their width), the name alone for the pretrained ones. */
const encLabel = (s: BenchShape) => (isPretrainedEncoder(s.encoder) ? s.encoder : `${s.encoder} w${s.width}`);

const shape = (backend: 'cpu' | 'webgpu', encoder = encoders[0]): BenchShape => ({
  encoder, width: int('width'), tileSize: tileSizeOf(encoder), k: int('k'), microBatch: int('micro-batch'), backend,
});
const steps = int('steps');
const warmup = Number(values.warmup);
const log = (s: string) => { if (!values.json) console.log(s); else console.error(s); };

function version(pkg: string): string {
  try {
    const req = createRequire(import.meta.url);
    return JSON.parse(readFileSync(req.resolve(`${pkg}/package.json`), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

const ROOT = new URL('..', import.meta.url);
const DECODE_WORKER = new URL('./workers/decode-bench.node.mjs', import.meta.url);

/** worker_threads decode workers (bench/workers/decode-bench.node.mjs) behind the pool driver's port. */
function nodeDecodePorts(n: number): DecodePort[] {
  return Array.from({ length: n }, (_, i) => {
    const w = new Worker(DECODE_WORKER);
    let done = false;
    return {
      post: (job) => w.postMessage(job),
      listen: (onReply, onError) => {
        w.on('message', (r: DecodeReply) => onReply(r));
        w.once('error', (e) => onError(new Error(`decode worker ${i}: ${e.message}`)));
        w.once('exit', (code) => { if (!done) onError(new Error(`decode worker ${i} exited (code ${code})`)); });
      },
      terminate: () => { done = true; void w.terminate(); },
    };
  });
}

/** The raw tiles of --decode-files (paths from the repository root; fixtures are made if missing). */
async function decodeTileSet(): Promise<{ files: string[]; tiles: RawTile[] }> {
  const files = values['decode-files'].split(',');
  if (files.some((f) => f.startsWith('.fixtures/'))) await ensureFixtures();
  const tiles: RawTile[] = [];
  for (const f of files) {
    const slide = await fromPath(new URL(f, ROOT).pathname);
    try {
      tiles.push(...(await rawTilesOf(slide)));
    } finally {
      await slide.close();
    }
  }
  return { files, tiles };
}

/** The demo data set (public/demo, `npm run demo`) as engine slides read from files by the ranks. */
function demoData(): { slides: SlideEntry[]; tiles: TileSourceSpec } | null {
  const index = new URL('public/demo/demo.json', ROOT).pathname;
  if (!existsSync(index)) return null;
  const demo = JSON.parse(readFileSync(index, 'utf8')) as DemoIndex;
  return {
    slides: demo.slides.map((s) => ({ id: s.slide, label: s.label, split: s.split, numTiles: s.grid.tiles.length })),
    tiles: { kind: 'slides', slides: demo.slides.map((s) => ({ id: s.slide, source: resolve(dirname(index), s.path), grid: s.grid })) },
  };
}

interface DecodeResult {
  tileSet: ReturnType<typeof describeTiles> & { files: string[] };
  rows: DecodeRow[];
}

interface MemoryResult {
  rows: MemoryRow[];
  reference: Awaited<ReturnType<typeof largestReferenceK>>;
  /** max/min of the rank peaks over the K values (1 = perfectly flat). */
  flatness: number;
  budgetBytes: number;
  rankFitsBudget: boolean;
  /** cpu only: the fast filter-gradient kernel against tfjs's stock one. */
  kernelCheck?: { relL2: number; k: number; stockPeakBytes: number; fastPeakBytes: number };
}

interface BackendResult {
  backend: string;
  info: BackendInfo;
  kernels?: KernelRow[];
  throughput: (ThroughputRow & { kernels: string })[];
  profile?: { kernels: string; totalMs: number; rows: KernelProfileRow[] }[];
  memory?: MemoryResult;
  /** Pretrained encoders (and the others with --micro-batches): memory per rank of one micro-batch. */
  encoderMemory?: (EncoderMemoryRow | SkippedMemoryRow)[];
  decodePath?: DecodePathRow[];
  comm?: ThroughputRow[];
  error?: string;
}

const started = performance.now();
const loadAtStart = os.loadavg();
const results: BackendResult[] = [];
let decode: DecodeResult | undefined;
if (only.has('decode')) {
  // Independent of the tfjs backend: geotiff's JS decoder (Node has no native image decoder).
  const set = await decodeTileSet();
  const o = { tiles: int('decode-tiles'), reps: int('decode-reps') };
  const info = describeTiles(set.tiles);
  log(`\n[decode] JS decoder, ${info.tiles} tiles (${info.sizes.join(', ')} JPEG, photometric ${info.photometric.join('/')}, ${info.meanCompressedBytes} B each) from ${set.files.join(', ')}; ${o.tiles} tiles per run, median of ${o.reps} ...`);
  decode = { tileSet: { ...info, files: set.files }, rows: await decodeRows('Node', 'js', set.tiles, ints('decode-pool'), nodeDecodePorts, o, log) };
}
for (const backend of backends as ('cpu' | 'webgpu')[]) {
  let info: BackendInfo;
  try {
    info = await setupNodeBackend(backend);
  } catch (e) {
    log(`[${backend}] unavailable: ${(e as Error).message}`);
    results.push({ backend, info: { backend: 'cpu', adapter: null, fallbackReason: (e as Error).message }, throughput: [], error: (e as Error).message });
    continue;
  }
  const gpu = backend === 'webgpu';
  const res: BackendResult = { backend, info, throughput: [] };
  results.push(res);
  const s = shape(backend);
  log(`\n[${backend}] ${gpu ? `adapter ${JSON.stringify(info.adapter)}` : 'tfjs cpu backend'}`);
  // cpu: the kernels setupNodeBackend chose (ours unless SLIDE_LAB_KERNELS=stock), one pass.
  const kernelModes = gpu ? (['ours', 'stock'] as const) : ([info.kernels ?? 'stock'] as const);
  const setKernels = (mode: string) => (mode === 'ours' ? registerTrainingKernels({ enabled: true }) : unregisterTrainingKernels());

  if (gpu && only.has('kernels')) {
    const b = int('kernel-batch');
    const sz = int('kernel-size');
    log(`[${backend}] Conv2DBackpropFilter and Conv2DBackpropInput, stock vs ours (batch ${b}, ${sz} px) ...`);
    const layers = [...cnn4Layers(b, sz), ...resnetLayers(Math.max(1, b >> 1), sz, Math.max(8, s.width))];
    res.kernels = [...(await benchFilterKernels(layers, int('kernel-reps'), log)), ...(await benchInputKernels(layers, int('kernel-reps'), log))];
  }

  if (only.has('throughput')) {
    const makeRanks: RankFactory = values.transport === 'worker' ? (n) => nodeWorkerRanks(n) : inProcess;
    for (const mode of kernelModes) {
      if (gpu) setKernels(mode);
      const tag = mode;
      const add = (r: ThroughputRow) => {
        res.throughput.push({ ...r, kernels: tag });
        log(`  ${r.mode}${r.ranks ? ` N=${r.ranks}` : ''} [kernels ${tag}]: ${fmt(r.stepMs)} ms/step, ${fmt(r.tilesPerSec, 2)} tiles/s`);
      };
      log(`[${backend}] throughput (${[...throughputModes].join(', ')}), K=${s.k}, ${encLabel(s)}, ${s.tileSize} px, micro-batch ${s.microBatch}, kernels ${tag} ...`);
      if (throughputModes.has('engine')) {
        for (const n of ints('ranks')) {
          if (mode === 'stock' && n > 1) continue; // stock comparison: N=1 only, to keep the run short
          add(await benchEngine(s, n, steps, warmup, makeRanks));
        }
      }
      if (throughputModes.has('reference')) add(await benchReference(s, steps, warmup));
      // The figure to set beside bench/pytorch_anchor.py's fwdbwd_tiles_per_s (same encoder, tile size, micro-batch).
      if (throughputModes.has('encoder')) add(await benchEncoderOnly(s, steps, warmup));
      if (mode !== 'stock' && throughputModes.has('frozen')) add(await benchEngine(s, 1, steps, warmup, makeRanks, true));
    }
  }

  if (only.has('profile')) {
    res.profile = [];
    for (const mode of kernelModes) {
      if (gpu) setKernels(mode);
      log(`[${backend}] per-kernel profile of one encoder micro-batch step (kernels ${mode}) ...`);
      const p = await profileEncoderStep(s);
      res.profile.push({ kernels: mode, ...p });
    }
  }

  if (only.has('memory')) {
    if (gpu) registerTrainingKernels({ enabled: true });
    // The K sweep: tiny-cnn or resnet (the rank's whole encode + micro-batched recompute against the reference).
    if (scratchEncoders.length) {
      const s = shape(backend, scratchEncoders[0]);
      const budget = Number(values['ref-cap-mb']) * 2 ** 20;
      const ks = ints('memory-k');
      log(`[${backend}] memory: peak tensor bytes per rank vs K (micro-batch ${s.microBatch}, ${encLabel(s)}, ${s.tileSize} px) and the single-graph reference ...`);
      // On cpu, tfjs's stock Conv2DBackpropFilter makes K = 4096 take minutes; a faster kernel with the
      // same allocations is swapped in after checking its gradients and one peak against the stock kernel.
      let restore: (() => void) | null = null;
      let kernelCheck: MemoryResult['kernelCheck'];
      if (!gpu && values['memory-kernel'] === 'stock') restore = useOurCpuKernels(false);
      if (!gpu && values['memory-kernel'] === 'fast') {
        const relL2 = checkFastCpuFilterGrad();
        const k0 = Math.min(...ks);
        const restoreStock = useOurCpuKernels(false);
        const stockPeak = await rankPeakBytes({ ...s, k: k0 });
        restoreStock();
        restore = useOurCpuKernels();
        const fastPeak = await rankPeakBytes({ ...s, k: k0 });
        kernelCheck = { relL2, k: k0, stockPeakBytes: stockPeak, fastPeakBytes: fastPeak };
        log(`  our cpu kernels (Conv2DBackpropFilter, BatchMatMul): filter gradient rel L2 vs stock ${relL2.toExponential(1)}; rank peak at K=${k0}: stock ${stockPeak} B, fast ${fastPeak} B${stockPeak === fastPeak ? ' (identical)' : ' (DIFFERENT: figures below use the fast kernel)'}`);
      }
      const rows: MemoryRow[] = [];
      let reference: Awaited<ReturnType<typeof largestReferenceK>>;
      try {
        for (const k of ks) {
          const t0 = performance.now();
          const rankPeak = await rankPeakBytes({ ...s, k });
          const refPeak = k <= 256 ? await referencePeakBytes({ ...s, k }) : null;
          rows.push({ k, rankPeakBytes: rankPeak, referencePeakBytes: refPeak, hostInputBytes: k * s.tileSize ** 2 * 3 }) // the RGB bytes Rank keeps for the recompute;
          log(`  K=${k}: rank peak ${fmt(rankPeak / 2 ** 20, 3)} MiB, reference peak ${refPeak === null ? '-' : fmt(refPeak / 2 ** 20, 2) + ' MiB'} (${fmt((performance.now() - t0) / 1000)} s)`);
        }
        reference = await largestReferenceK(s, 64, budget);
      } finally {
        restore?.();
      }
      const peaks = rows.map((r) => r.rankPeakBytes);
      const flatness = Math.max(...peaks) / Math.min(...peaks);
      log(`  rank peak max/min over K=${ks.join(',')}: ${fmt(flatness, 3)}; largest K the reference held within ${values['ref-cap-mb']} MiB: ${reference.largestK} (${reference.stoppedBy})`);
      res.memory = { rows, reference, flatness, budgetBytes: budget, rankFitsBudget: peaks.every((p) => p <= budget), kernelCheck };
    }
    // Memory per rank of one micro-batch: the pretrained encoders, and the others when --micro-batches is given.
    const tableEncoders = encoders.filter((e) => isPretrainedEncoder(e) || values['micro-batches']);
    if (tableEncoders.length) {
      // cpu: our BatchMatMul and Conv2DBackpropFilter (same allocations as tfjs's, so the same peaks) unless --memory-kernel stock.
      const restore = gpu ? null : useOurCpuKernels(values['memory-kernel'] !== 'stock');
      // Rows predicted to need more than 3/4 of the free memory now are skipped.
      const o = { maxSeconds: memoryMaxSeconds, warmMaxSeconds: memoryWarmMaxSeconds, maxBytes: 0.75 * os.freemem(), log };
      log(`[${backend}] memory per rank of one micro-batch (${microBatchList.join(', ')}) for ${tableEncoders.join(', ')}; rows predicted over ${memoryMaxSeconds} s skipped, warm run when the first took <= ${memoryWarmMaxSeconds} s ...`);
      res.encoderMemory = [];
      try {
        for (const e of tableEncoders) res.encoderMemory.push(...(await encoderMemoryRows(shape(backend, e), microBatchList, o)));
      } finally {
        restore?.();
      }
    }
  }

  if (only.has('decode')) {
    const data = demoData();
    if (!data) log(`[${backend}] decode on the critical path: skipped, public/demo/demo.json is missing (run \`npm run demo\`)`);
    else {
      const ds: BenchShape = { ...s, k: int('decode-k') };
      log(`[${backend}] decode on the critical path: demo slides, K=${ds.k}, ${encLabel(ds)}, ${ds.tileSize} px, worker ranks, prefetch on/off ...`);
      res.decodePath = [];
      for (const n of ints('decode-ranks')) {
        for (const prefetch of [true, false]) {
          const r = await benchDecodeOnCriticalPath(ds, n, steps, warmup, (m) => nodeWorkerRanks(m), data, prefetch);
          res.decodePath.push(r);
          log(`  N=${n} prefetch ${prefetch ? 'on ' : 'off'}: decode on the critical path ${fmt(r.decodeMs)} ms of ${fmt(r.stepMs)} ms/step (${fmt(100 * r.decodeShare)}%), prefetched ${r.prefetchedSteps}/${r.steps} steps`);
        }
      }
    }
  }

  if (only.has('comm')) {
    const makeRanks: RankFactory = values.transport === 'worker' ? (n) => nodeWorkerRanks(n) : inProcess;
    log(`[${backend}] communication, K=${s.k}, ${encLabel(s)}, ${s.tileSize} px, micro-batch ${s.microBatch}, ${values.transport} ranks ...`);
    res.comm = [];
    for (const n of ints('ranks')) {
      const r = await benchEngine(s, n, steps, warmup, makeRanks);
      res.comm.push(r);
      log(`  N=${n}: ${fmt(r.stepMs)} ms/step, communication ${fmt(100 * r.commShare!, 2)}% of the step (${fmt(r.commMs!.gather, 1)} + ${fmt(r.commMs!.scatter, 1)} + ${fmt(r.commMs!.reduce, 1)} ms gather + scatter + reduce), ${Math.round(r.bytesPerStep!)} bytes/step (${Object.entries(r.bytesByPhase!).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')})`);
    }
  }
  if (gpu) registerTrainingKernels({ enabled: true });
}

const doc = {
  kind: 'slide-lab-bench',
  date: new Date().toISOString(),
  seconds: (performance.now() - started) / 1000,
  machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1), platform: `${os.platform()} ${os.release()}`, node: process.version, loadavg: os.loadavg() },
  versions: { tfjs: tf.version.tfjs, tfjsBackendWebgpu: version('@tensorflow/tfjs-backend-webgpu'), webgpu: version('webgpu') },
  config: { ...values, json: undefined, record: undefined },
  ourKernels: activeTrainingKernels(),
  decode,
  results,
};

if (values.record) {
  const { config, ...measured } = doc;
  const adapters = results.map((r) => `${r.backend}: ${r.backend === 'cpu' && !r.error ? 'tfjs cpu backend' : r.info.adapter ? `${r.info.adapter.vendor} ${r.info.adapter.architecture} ${r.info.adapter.description}`.replace(/\s+/g, ' ').trim() : r.error ?? 'no adapter'}`).join(', ');
  const machine = describeMachine(`tfjs ${doc.versions.tfjs}, webgpu npm ${doc.versions.webgpu}${adapters ? `; ${adapters}` : ''}`);
  const file = writeRecord(makeRecord({ series: values.record, command: commandLine('bench', process.argv.slice(2), ['SLIDE_LAB_KERNELS', 'SLIDE_LAB_SWIFTSHADER']), doc: measured, config, machine, loadAtStart }));
  log(`record: ${file}`);
}
if (values.json) {
  console.log(JSON.stringify(doc, null, 2));
} else {
  const mib = (b: number) => fmt(b / 2 ** 20, 2);
  if (decode) {
    const t = decode.tileSet;
    console.log(`\ntile decode in Node (geotiff's JS decoder; ${t.tiles} tiles, ${t.sizes.join(', ')}, from ${t.files.join(', ')}; median of the runs)`);
    const one = decode.rows.find((r) => r.mode === 'pool' && r.workers === 1);
    console.log(table(['path', 'where', 'workers', 'tiles/run', 'tiles/s', 'runs', 'vs pool of 1', 'ms/tile in thread'],
      decode.rows.map((r) => [r.path, r.mode, r.workers || '-', r.tiles, fmt(r.tilesPerSec), r.runs.map((x) => fmt(x, 0)).join(' '), one ? `x${fmt(r.tilesPerSec / one.tilesPerSec, 2)}` : '-', fmt(r.msPerTileInWorker, 1)])));
  }
  console.log(`\nmachine: ${doc.machine.cpu}, ${doc.machine.cores} cores, ${doc.machine.memoryGiB} GiB; node ${doc.machine.node}; tfjs ${doc.versions.tfjs}; webgpu npm ${doc.versions.webgpu}; load ${doc.machine.loadavg.map((x) => x.toFixed(1)).join(' ')}`);
  for (const r of results) {
    console.log(`\n== ${r.backend}${r.info.adapter ? ` (${r.info.adapter.vendor} ${r.info.adapter.architecture} ${r.info.adapter.device} ${r.info.adapter.description})`.replace(/\s+/g, ' ') : ''}${r.error ? `: ${r.error}` : ''}`);
    for (const name of ['Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const) {
      const rows = (r.kernels ?? []).filter((k) => k.kernel === name);
      if (!rows.length) continue;
      console.log(`\n${name} per layer (median ms per call incl. sync)`);
      console.log(table(['layer', 'x', 'filter', 'GFLOP', 'stock ms', 'ours ms', 'speed-up', 'ours ran', 'rel L2'],
        rows.map((k) => [k.layer, k.x.join('x'), k.filter.join('x'), fmt(k.gflop, 3), fmt(k.stockMs), fmt(k.oursMs), `x${fmt(k.speedup, 2)}`, k.path, k.relL2.toExponential(1)])));
    }
    if (r.throughput.length) {
      console.log('\nstep throughput');
      const e2e = r.throughput.find((t) => t.mode === 'end-to-end engine' && t.ranks === 1 && t.kernels !== 'stock');
      console.log(table(['mode', 'N', 'kernels', 'K', 'ms/step', 'tiles/s', 'vs engine N=1', 'comm share', 'bytes/step'],
        r.throughput.map((t) => [t.mode, t.ranks ?? '-', t.kernels, t.k, fmt(t.stepMs), fmt(t.tilesPerSec, 2), e2e ? `x${fmt(t.tilesPerSec / e2e.tilesPerSec, 2)}` : '-', t.commShare === undefined ? '-' : `${fmt(100 * t.commShare)}%`, t.bytesPerStep === undefined ? '-' : Math.round(t.bytesPerStep)])));
      for (const t of r.throughput.filter((x) => x.shares)) {
        console.log(`  phases ${t.mode} N=${t.ranks} [${t.kernels}]: ` + Object.entries(t.shares!).map(([k, v]) => `${k} ${fmt(100 * v)}%`).join(', '));
      }
    }
    for (const p of r.profile ?? []) {
      console.log(`\nper-kernel time, one encoder micro-batch forward+backward (kernels ${p.kernels}; total ${fmt(p.totalMs)} ms${r.backend === 'webgpu' ? ', GPU timestamps' : ''})`);
      console.log(table(['kernel', 'calls', 'ms', 'share'], p.rows.slice(0, 10).map((k) => [k.kernel, k.calls, fmt(k.ms, 2), `${fmt(100 * k.share)}%`])));
    }
    if (r.memory) {
      const m = r.memory;
      console.log(`\nmemory: peak tfjs tensor bytes of one rank's encode + micro-batched recompute/backward (tf.profile)${m.kernelCheck ? `; our cpu kernels (filter gradient rel L2 vs stock ${m.kernelCheck.relL2.toExponential(1)}, peak at K=${m.kernelCheck.k} ${m.kernelCheck.stockPeakBytes === m.kernelCheck.fastPeakBytes ? 'identical to' : 'DIFFERENT from'} stock)` : ''}`);
      console.log(table(['K', 'rank peak MiB (micro-batched)', 'reference peak MiB', 'host inputs kept for recompute MiB (K x S x S x 3 bytes)'],
        m.rows.map((x) => [x.k, fmt(x.rankPeakBytes / 2 ** 20, 3), x.referencePeakBytes === null ? '-' : mib(x.referencePeakBytes), mib(x.hostInputBytes)])));
      console.log(`rank peak, max/min over K = ${m.rows.map((x) => x.k).join(', ')}: ${fmt(m.flatness, 3)} (target: within 1.10)`);
      console.log(`"fails" = peak tensor bytes above a ${mib(m.budgetBytes)} MiB budget (--ref-cap-mb), standing in for a GPU's memory; the cpu backend here has no limit of its own`);
      console.log(`largest K the single-graph reference held within it: ${m.reference.largestK} (${m.reference.stoppedBy}); the rank's peak ${m.rankFitsBudget ? 'fits' : 'does NOT fit'} the budget at every K above`);
    }
    if (r.encoderMemory?.length) {
      console.log(`\nmemory per rank of one micro-batch forward + backward (${r.backend}; tf.profile peak of tf.variableGrads(sum(encoderForward(x) * dy)), what Rank.shareOfGradient runs per micro-batch)`);
      console.log(encoderMemoryTable(r.encoderMemory));
      console.log('weights + grad acc + AdamW = 16 B per parameter (float32 weights, gradient accumulator, AdamW m and v), computed. measured peak above weights = tf.profile peakBytes minus the bytes live before (weights, x, dy): the activations the tape keeps plus this micro-batch\'s gradients (4 B per parameter). estimate act. + grads = memory-estimate.ts activationBytes + 4 B per parameter (its parameterBytes counts 20 B per parameter: the 16 above + these gradients). measured total = 16 B per parameter + measured peak above weights + x and dy. Times: a second (warm) run, or the first (cold, profiled) one where marked; process cpu s = this process\'s user + system CPU time over the run (tfjs\'s cpu backend uses one thread, so on a shared machine it is nearer the unloaded wall time than the wall time is).');
    }
    if (r.decodePath) {
      console.log('\ndecode on the critical path (engine on the demo slides, worker ranks; median per step)');
      const off = (n: number) => r.decodePath!.find((x) => x.ranks === n && !x.prefetch);
      console.log(table(['N', 'prefetch', 'K', 'ms/step', 'decode ms on path', 'share', 'prefetched steps', 'forward ms', 'ms/step saved vs off'],
        r.decodePath.map((d) => [d.ranks, d.prefetch ? 'on' : 'off', d.k, fmt(d.stepMs), fmt(d.decodeMs), `${fmt(100 * d.decodeShare)}%`, `${d.prefetchedSteps}/${d.steps}`, fmt(d.forwardMs), d.prefetch && off(d.ranks) ? fmt(off(d.ranks)!.stepMs - d.stepMs) : '-'])));
      console.log('decode ms on path: the slowest rank\'s decode phase per step (read + decode + resize + augment); with prefetch it is the wait for tiles read during the previous step');
    }
    if (r.comm) {
      console.log(`\ncommunication per step (${values.transport} ranks; mean ms on the critical path, bytes crossing threads)`);
      console.log(table(['N', 'K', 'ms/step', 'gather ms', 'scatter ms', 'reduce ms', 'comm share', 'bytes/step', 'by phase'],
        r.comm.map((t) => [t.ranks ?? '-', t.k, fmt(t.stepMs), fmt(t.commMs!.gather, 2), fmt(t.commMs!.scatter, 2), fmt(t.commMs!.reduce, 2), `${fmt(100 * t.commShare!, 2)}%`, Math.round(t.bytesPerStep!), Object.entries(t.bytesByPhase!).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')])));
    }
  }
  console.log(`\n${fmt(doc.seconds)} s in all`);
}
process.exit(0);

// npm run bench -- [--json] [--backends cpu,webgpu] [--encoder tiny-cnn|resnet] [--width 8]
//   [--tile-size 32] [--k 16] [--ranks 1,2] [--micro-batch 8] [--steps 3] [--warmup 1]
//   [--transport in-process|worker] [--memory-k 16,64,256] [--ref-cap-mb 48]
//   [--kernel-batch 4] [--kernel-size 64] [--kernel-reps 2] [--only kernels,throughput,profile,memory]
// Node benchmarks of Slide Lab on the tfjs cpu backend and on real WebGPU through Dawn's Node
// bindings (npm `webgpu`; SwiftShader on a machine without a GPU). Prints a table, or one JSON
// document with --json. Figures only: nothing here asserts a timing.
import { parseArgs } from 'node:util';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tf } from '../src/core/tf.ts';
import { setupNodeBackend } from '../src/runtime/node.ts';
import { nodeWorkerRanks } from '../src/transport/node-worker.ts';
import type { BackendInfo } from '../src/core/protocol.ts';
import { registerTrainingKernels, unregisterTrainingKernels, activeTrainingKernels } from '../src/kernels/index.ts';
import { benchFilterKernels, cnn4Layers, resnetLayers, type KernelRow } from './lib/kernel-bench.ts';
import {
  benchEncoderOnly, benchEngine, benchReference, inProcess, largestReferenceK, profileEncoderStep, rankPeakBytes, referencePeakBytes,
  type BenchShape, type KernelProfileRow, type MemoryRow, type RankFactory, type ThroughputRow,
} from './lib/engine-bench.ts';
import { fmt, table } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    backends: { type: 'string', default: 'cpu,webgpu' },
    encoder: { type: 'string', default: 'tiny-cnn' },
    width: { type: 'string', default: '8' },
    'tile-size': { type: 'string', default: '32' },
    k: { type: 'string', default: '16' },
    ranks: { type: 'string', default: '1,2' },
    'micro-batch': { type: 'string', default: '8' },
    steps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    transport: { type: 'string', default: 'in-process' },
    'memory-k': { type: 'string', default: '16,64,256' },
    'ref-cap-mb': { type: 'string', default: '48' },
    'kernel-batch': { type: 'string', default: '4' },
    'kernel-size': { type: 'string', default: '64' },
    'kernel-reps': { type: 'string', default: '2' },
    only: { type: 'string', default: 'kernels,throughput,profile,memory' },
  },
});

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}
const int = (name: keyof typeof values): number => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1) fail(`--${name} must be a positive integer, got '${values[name]}'`);
  return v;
};
const ints = (name: keyof typeof values): number[] => String(values[name]).split(',').map((x) => {
  const v = Number(x);
  if (!Number.isInteger(v) || v < 1) fail(`--${name} must be a comma-separated list of positive integers, got '${values[name]}'`);
  return v;
});
if (!['tiny-cnn', 'resnet'].includes(values.encoder)) fail(`--encoder must be tiny-cnn or resnet, got '${values.encoder}'`);
if (!['in-process', 'worker'].includes(values.transport)) fail(`--transport must be in-process or worker, got '${values.transport}'`);
const backends = values.backends.split(',');
if (backends.some((b) => b !== 'cpu' && b !== 'webgpu')) fail(`--backends must list cpu and/or webgpu, got '${values.backends}'`);
const only = new Set(values.only.split(','));

const shape = (backend: 'cpu' | 'webgpu'): BenchShape => ({
  encoder: values.encoder as BenchShape['encoder'], width: int('width'), tileSize: int('tile-size'), k: int('k'), microBatch: int('micro-batch'), backend,
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

interface BackendResult {
  backend: string;
  info: BackendInfo;
  kernels?: KernelRow[];
  throughput: (ThroughputRow & { kernels: string })[];
  profile?: { kernels: string; totalMs: number; rows: KernelProfileRow[] }[];
  memory?: { rows: MemoryRow[]; reference: Awaited<ReturnType<typeof largestReferenceK>> };
  error?: string;
}

const started = performance.now();
const results: BackendResult[] = [];
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
  const kernelModes = gpu ? (['ours', 'stock'] as const) : (['-'] as const);
  const setKernels = (mode: string) => (mode === 'ours' ? registerTrainingKernels({ enabled: true }) : unregisterTrainingKernels());

  if (gpu && only.has('kernels')) {
    const b = int('kernel-batch');
    const sz = int('kernel-size');
    log(`[${backend}] Conv2DBackpropFilter, stock vs ours (batch ${b}, ${sz} px) ...`);
    res.kernels = await benchFilterKernels([...cnn4Layers(b, sz), ...resnetLayers(Math.max(1, b >> 1), sz, Math.max(8, s.width))], int('kernel-reps'), log);
  }

  if (only.has('throughput')) {
    const makeRanks: RankFactory = values.transport === 'worker' ? (n) => nodeWorkerRanks(n) : inProcess;
    for (const mode of kernelModes) {
      if (gpu) setKernels(mode);
      const tag = gpu ? mode : '-';
      const add = (r: ThroughputRow) => {
        res.throughput.push({ ...r, kernels: tag });
        log(`  ${r.mode}${r.ranks ? ` N=${r.ranks}` : ''} [kernels ${tag}]: ${fmt(r.stepMs)} ms/step, ${fmt(r.tilesPerSec, 2)} tiles/s`);
      };
      log(`[${backend}] throughput, K=${s.k}, ${s.encoder} w${s.width}, ${s.tileSize} px, micro-batch ${s.microBatch}, kernels ${tag} ...`);
      for (const n of ints('ranks')) {
        if (mode === 'stock' && n > 1) continue; // stock comparison: N=1 only, to keep the run short
        add(await benchEngine(s, n, steps, warmup, makeRanks));
      }
      add(await benchReference(s, steps, warmup));
      add(await benchEncoderOnly(s, steps, warmup));
      if (mode !== 'stock') add(await benchEngine(s, 1, steps, warmup, makeRanks, true));
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
    log(`[${backend}] memory: peak bytes per rank vs K (micro-batch ${s.microBatch}) and the single-graph reference ...`);
    const rows: MemoryRow[] = [];
    for (const k of ints('memory-k')) {
      const rankPeak = await rankPeakBytes({ ...s, k });
      const refPeak = k <= 256 ? await referencePeakBytes({ ...s, k }) : null;
      rows.push({ k, rankPeakBytes: rankPeak, referencePeakBytes: refPeak });
      log(`  K=${k}: rank peak ${fmt(rankPeak / 2 ** 20, 2)} MiB, reference peak ${refPeak === null ? '-' : fmt(refPeak / 2 ** 20, 2) + ' MiB'}`);
    }
    const reference = await largestReferenceK(s, 64, Number(values['ref-cap-mb']) * 2 ** 20);
    log(`  largest K the reference held: ${reference.largestK} (${reference.stoppedBy})`);
    res.memory = { rows, reference };
  }
  if (gpu) registerTrainingKernels({ enabled: true });
}

const doc = {
  kind: 'slide-lab-bench',
  date: new Date().toISOString(),
  seconds: (performance.now() - started) / 1000,
  machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1), platform: `${os.platform()} ${os.release()}`, node: process.version, loadavg: os.loadavg() },
  versions: { tfjs: tf.version.tfjs, tfjsBackendWebgpu: version('@tensorflow/tfjs-backend-webgpu'), webgpu: version('webgpu') },
  config: { ...values, json: undefined },
  ourKernels: activeTrainingKernels(),
  results,
};

if (values.json) {
  console.log(JSON.stringify(doc, null, 2));
} else {
  const mib = (b: number) => fmt(b / 2 ** 20, 2);
  console.log(`\nmachine: ${doc.machine.cpu}, ${doc.machine.cores} cores, ${doc.machine.memoryGiB} GiB; node ${doc.machine.node}; tfjs ${doc.versions.tfjs}; webgpu npm ${doc.versions.webgpu}; load ${doc.machine.loadavg.map((x) => x.toFixed(1)).join(' ')}`);
  for (const r of results) {
    console.log(`\n== ${r.backend}${r.info.adapter ? ` (${r.info.adapter.vendor} ${r.info.adapter.architecture} ${r.info.adapter.device} ${r.info.adapter.description})`.replace(/\s+/g, ' ') : ''}${r.error ? `: ${r.error}` : ''}`);
    if (r.kernels) {
      console.log('\nConv2DBackpropFilter per layer (median ms per call incl. sync)');
      console.log(table(['layer', 'x', 'filter', 'GFLOP', 'stock ms', 'ours ms', 'speed-up', 'ours ran', 'rel L2'],
        r.kernels.map((k) => [k.layer, k.x.join('x'), k.filter.join('x'), fmt(k.gflop, 3), fmt(k.stockMs), fmt(k.oursMs), `x${fmt(k.speedup, 2)}`, k.path, k.relL2.toExponential(1)])));
    }
    if (r.throughput.length) {
      console.log('\nstep throughput');
      const e2e = r.throughput.find((t) => t.mode === 'end-to-end engine' && t.ranks === 1 && t.kernels !== 'stock');
      console.log(table(['mode', 'N', 'kernels', 'K', 'ms/step', 'tiles/s', 'vs engine N=1', 'comm share', 'bytes/step'],
        r.throughput.map((t) => [t.mode, t.ranks ?? '-', t.kernels, t.k, fmt(t.stepMs), fmt(t.tilesPerSec, 2), e2e ? `x${fmt(t.tilesPerSec / e2e.tilesPerSec, 2)}` : '-', t.commShare === undefined ? '-' : `${fmt(100 * t.commShare)}%`, t.bytesPerStep === undefined ? '-' : t.bytesPerStep])));
      for (const t of r.throughput.filter((x) => x.shares)) {
        console.log(`  phases ${t.mode} N=${t.ranks} [${t.kernels}]: ` + Object.entries(t.shares!).map(([k, v]) => `${k} ${fmt(100 * v)}%`).join(', '));
      }
    }
    for (const p of r.profile ?? []) {
      console.log(`\nper-kernel time, one encoder micro-batch forward+backward (kernels ${p.kernels}; total ${fmt(p.totalMs)} ms${r.backend === 'webgpu' ? ', GPU timestamps' : ''})`);
      console.log(table(['kernel', 'calls', 'ms', 'share'], p.rows.slice(0, 10).map((k) => [k.kernel, k.calls, fmt(k.ms, 2), `${fmt(100 * k.share)}%`])));
    }
    if (r.memory) {
      console.log('\nmemory (peak tfjs tensor bytes)');
      console.log(table(['K', 'rank peak MiB (micro-batched)', 'reference peak MiB'], r.memory.rows.map((m) => [m.k, mib(m.rankPeakBytes), m.referencePeakBytes === null ? '-' : mib(m.referencePeakBytes)])));
      console.log(`largest K the single-graph reference held: ${r.memory.reference.largestK} (${r.memory.reference.stoppedBy})`);
    }
  }
  console.log(`\n${fmt(doc.seconds)} s in all`);
}
process.exit(0);

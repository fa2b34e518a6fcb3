// End-to-end step throughput, phase shares, per-kernel profile and memory figures, measured on
// whatever tfjs backend is active. Runs in Node and in the browser (ranks are passed in).
// Every figure is measured here; nothing is asserted.
import { tf } from '../../src/core/tf.ts';
import { featureDim, parseConfig, type Config } from '../../src/core/config.ts';
import { Engine } from '../../src/core/engine.ts';
import { ReferenceTrainer } from '../../src/core/reference.ts';
import { encoderForward, encoderSpecs } from '../../src/core/models/encoder.ts';
import { createParams, disposeParams } from '../../src/core/params.ts';
import { Rank } from '../../src/core/rank.ts';
import { syntheticSlides, SyntheticTiles } from '../../src/core/tiles.ts';
import { inProcessRanks } from '../../src/transport/in-process.ts';
import { microBatches } from '../../src/core/rank.ts';
import type { RankApi } from '../../src/core/protocol.ts';
import type { StepReport } from '../../src/core/report.ts';
import { median } from './stats.ts';

export interface BenchShape {
  encoder: 'tiny-cnn' | 'resnet';
  width: number;
  tileSize: number;
  k: number;
  microBatch: number;
  /** What worker ranks select; in-process ranks use the main context's backend. */
  backend: 'cpu' | 'webgpu';
  seed?: number;
}

export function benchConfig(s: BenchShape, extra: Record<string, unknown> = {}): Config {
  return parseConfig({
    seed: s.seed ?? 11, tiles: s.k, tileSize: s.tileSize, microBatch: s.microBatch, ranks: 1, epochs: 100,
    encoder: { kind: s.encoder, width: s.width }, dropout: 0, backend: s.backend, ...extra,
  });
}

export type RankFactory = (n: number) => RankApi[];
export const inProcess: RankFactory = (n) => inProcessRanks(n);

export interface ThroughputRow {
  mode: string;
  ranks: number | null;
  k: number;
  stepMs: number;
  tilesPerSec: number;
  /** Shares of the step's wall time (engine modes only). */
  shares?: Record<string, number>;
  /** Communication (gather + scatter + reduce) share of wall time; bytes crossing threads per step. */
  commShare?: number;
  bytesPerStep?: number;
}

function sharesOf(reports: StepReport[]): { shares: Record<string, number>; commShare: number; bytesPerStep: number } {
  const sum: Record<string, number> = {};
  let wall = 0;
  let bytes = 0;
  for (const r of reports) {
    wall += r.wallMs;
    // The critical path: the slowest rank's decode/forward/recompute, the main context's phases.
    const slow = (p: 'decode' | 'forward' | 'recompute' | 'optimizer') => Math.max(0, ...r.perRank.map((x) => x.ms[p] ?? 0));
    const add = (k: string, v: number) => (sum[k] = (sum[k] ?? 0) + v);
    add('decode', slow('decode'));
    add('forward', slow('forward'));
    add('gather', r.main.gather ?? 0);
    add('aggregator', r.main.aggregator ?? 0);
    add('scatter', r.main.scatter ?? 0);
    add('recompute', slow('recompute'));
    add('reduce', r.main.reduce ?? 0);
    add('optimizer', r.main.optimizer ?? 0);
    bytes += Object.values(r.bytes).reduce((a, b) => a + (b ?? 0), 0);
  }
  const shares: Record<string, number> = {};
  for (const [k, v] of Object.entries(sum)) shares[k] = v / wall;
  const commShare = shares.gather + shares.scatter + shares.reduce;
  return { shares, commShare, bytesPerStep: bytes / reports.length };
}

/** Engine steps with N ranks: median wall time after `warmup` steps. */
export async function benchEngine(s: BenchShape, n: number, steps: number, warmup: number, makeRanks: RankFactory, frozen = false): Promise<ThroughputRow> {
  const cfg = benchConfig(s, {
    ranks: n, frozenEncoder: frozen,
    // Frozen MIL caches features: only possible without augmentation.
    ...(frozen ? { augment: { flip: false, rot90: false, blur: 0 } } : {}),
  });
  const slides = syntheticSlides(frozen ? 2 : 4, cfg.seed, s.k);
  const ranks = makeRanks(n);
  const engine = new Engine(cfg, slides, ranks);
  try {
    await engine.init({ kind: 'synthetic', seed: cfg.seed, slides });
    // Frozen: warm the feature cache over every training slide first (the MIL baseline's "precompute").
    const warm = frozen ? Math.max(warmup, 2 * engine.sampler.stepsPerEpoch) : warmup;
    for (let i = 0; i < warm; i++) await engine.trainStep();
    const reports: StepReport[] = [];
    for (let i = 0; i < steps; i++) reports.push(await engine.trainStep());
    const stepMs = median(reports.map((r) => r.wallMs));
    const sh = sharesOf(reports);
    return { mode: frozen ? 'frozen-encoder MIL (aggregator only, cached features)' : 'end-to-end engine', ranks: n, k: s.k, stepMs, tilesPerSec: (s.k / stepMs) * 1000, ...sh };
  } finally {
    await engine.dispose().catch(() => undefined);
    for (const r of ranks) (r as { terminate?: () => void }).terminate?.();
  }
}

/** The single-graph reference step (one variableGrads over all K tiles). */
export async function benchReference(s: BenchShape, steps: number, warmup: number): Promise<ThroughputRow> {
  const cfg = benchConfig(s);
  const slides = syntheticSlides(4, cfg.seed, s.k);
  const ref = new ReferenceTrainer(cfg, slides, new SyntheticTiles(cfg.seed, slides));
  try {
    for (let i = 0; i < warmup; i++) await ref.trainStep();
    const ms: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await ref.trainStep();
      ms.push(performance.now() - t0);
    }
    const stepMs = median(ms);
    return { mode: 'single-graph reference', ranks: null, k: s.k, stepMs, tilesPerSec: (s.k / stepMs) * 1000 };
  } finally {
    ref.dispose();
  }
}

/** The encoder's forward + backward alone on K tiles in micro-batches: bounds any distribution scheme. */
export async function benchEncoderOnly(s: BenchShape, steps: number, warmup: number): Promise<ThroughputRow> {
  const cfg = benchConfig(s);
  const specs = encoderSpecs(cfg.encoder);
  const params = createParams(specs, cfg.seed);
  const vars = specs.map((sp) => params.get(sp.name)!);
  const d = featureDim(cfg.encoder);
  const m = s.microBatch;
  const x = tf.randomUniform([m, s.tileSize, s.tileSize, 3], -1, 1, 'float32', 1);
  const dy = tf.randomNormal([m, d], 0, 1, 'float32', 2);
  const step = async () => {
    for (const _ of microBatches(s.k, m)) {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(encoderForward(params, cfg.encoder, x), dy)) as tf.Scalar, vars);
      await value.data();
      tf.dispose([value, ...Object.values(grads)]);
    }
  };
  try {
    for (let i = 0; i < warmup; i++) await step();
    const ms: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await step();
      ms.push(performance.now() - t0);
    }
    const stepMs = median(ms);
    return { mode: 'encoder forward+backward alone', ranks: null, k: s.k, stepMs, tilesPerSec: (s.k / stepMs) * 1000 };
  } finally {
    tf.dispose([x, dy]);
    disposeParams(params);
  }
}

export interface KernelProfileRow {
  kernel: string;
  ms: number;
  share: number;
  calls: number;
}

/**
 * tfjs's profiler over one micro-batch forward+backward of the encoder. On webgpu with
 * timestamp-query the times are GPU times per dispatch; on cpu, wall time per kernel.
 */
export async function profileEncoderStep(s: BenchShape): Promise<{ totalMs: number; rows: KernelProfileRow[] }> {
  const cfg = benchConfig(s);
  const specs = encoderSpecs(cfg.encoder);
  const params = createParams(specs, cfg.seed);
  const vars = specs.map((sp) => params.get(sp.name)!);
  const d = featureDim(cfg.encoder);
  const x = tf.randomUniform([s.microBatch, s.tileSize, s.tileSize, 3], -1, 1, 'float32', 1);
  const dy = tf.randomNormal([s.microBatch, d], 0, 1, 'float32', 2);
  const once = async () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(encoderForward(params, cfg.encoder, x), dy)) as tf.Scalar, vars);
    await value.data();
    await Promise.all(Object.values(grads).map((g) => g.data()));
    tf.dispose([value, ...Object.values(grads)]);
  };
  try {
    await once(); // compile pipelines outside the profile
    const info = await tf.profile(once);
    const by = new Map<string, { ms: number; calls: number }>();
    for (const k of info.kernels) {
      const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const e = by.get(k.name) ?? { ms: 0, calls: 0 };
      e.ms += t;
      e.calls += 1;
      by.set(k.name, e);
    }
    const total = [...by.values()].reduce((a, b) => a + b.ms, 0);
    const rows = [...by.entries()].map(([kernel, e]) => ({ kernel, ms: e.ms, share: e.ms / total, calls: e.calls })).sort((a, b) => b.ms - a.ms);
    return { totalMs: total, rows };
  } finally {
    tf.dispose([x, dy]);
    disposeParams(params);
  }
}

export interface MemoryRow {
  k: number;
  /** Peak tfjs tensor bytes during one rank's encode + backward (micro-batched). */
  rankPeakBytes: number;
  /** Peak bytes of the single-graph reference step at the same K (null if not measured). */
  referencePeakBytes: number | null;
}

/** Peak tensor bytes of one in-process rank for encode + recompute/backward over K tiles. */
export async function rankPeakBytes(s: BenchShape): Promise<number> {
  const cfg = benchConfig(s);
  const slides = syntheticSlides(1, cfg.seed, s.k, 0);
  const rank = new Rank({ name: 'bench', setupBackend: async () => ({ backend: tf.getBackend() === 'webgpu' ? 'webgpu' : 'cpu', adapter: null }), makeTileSource: () => new SyntheticTiles(cfg.seed, slides) });
  await rank.init({ rank: 0, ranks: 1, config: cfg, tiles: { kind: 'synthetic', seed: cfg.seed, slides } });
  const slots = Int32Array.from({ length: s.k }, (_, i) => i);
  try {
    const info = await tf.profile(async () => {
      const enc = await rank.encode({ step: 0, slideId: slides[0].id, slots, tileIndices: slots, train: true });
        await rank.backward({ grad: enc.features.map((_, i) => Math.sin(i)) }); // [K, D] dL/dFeatures stand-in
    });
    return info.peakBytes;
  } finally {
    await rank.dispose();
  }
}

/** Peak tensor bytes of one single-graph reference step at K. */
export async function referencePeakBytes(s: BenchShape): Promise<number> {
  const cfg = benchConfig(s);
  const slides = syntheticSlides(1, cfg.seed, s.k, 0);
  const ref = new ReferenceTrainer(cfg, slides, new SyntheticTiles(cfg.seed, slides));
  try {
    const info = await tf.profile(async () => {
      await ref.trainStep();
    });
    return info.peakBytes;
  } finally {
    ref.dispose();
  }
}

/**
 * Doubles K for the single-graph reference until a step fails (out of memory, a buffer over the
 * adapter's binding limit) or its peak passes `capBytes`; returns the largest K that ran.
 */
export async function largestReferenceK(s: BenchShape, startK: number, capBytes: number, maxK = 1 << 16): Promise<{ largestK: number; stoppedBy: string; peaks: { k: number; peakBytes: number }[] }> {
  const peaks: { k: number; peakBytes: number }[] = [];
  let largestK = 0;
  for (let k = startK; k <= maxK; k *= 2) {
    try {
      const peak = await referencePeakBytes({ ...s, k });
      peaks.push({ k, peakBytes: peak });
      largestK = k;
      if (peak > capBytes) return { largestK, stoppedBy: `peak ${Math.round(peak / 2 ** 20)} MiB passed the cap of ${Math.round(capBytes / 2 ** 20)} MiB`, peaks };
    } catch (e) {
      return { largestK, stoppedBy: `K=${k} failed: ${(e as Error).message.slice(0, 200)}`, peaks };
    }
  }
  return { largestK, stoppedBy: `reached maxK ${maxK}`, peaks };
}

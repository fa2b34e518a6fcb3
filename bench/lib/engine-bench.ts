// End-to-end step throughput, phase shares, per-kernel profile and memory figures, measured on
// whatever tfjs backend is active. Runs in Node and in the browser (ranks are passed in).
// Every figure is measured here; nothing is asserted.
import { cpuTrainingKernelsActive, registerCpuTrainingKernels } from '../../src/kernels/cpu-kernels.ts';
import { tf } from '../../src/core/tf.ts';
import { EncoderSchema, featureDim, parseConfig, type Config, type EncoderConfig } from '../../src/core/config.ts';
import { Engine } from '../../src/core/engine.ts';
import { ReferenceTrainer } from '../../src/core/reference.ts';
import { encoderForward, encoderSpecs } from '../../src/core/models/encoder.ts';
import { createParams, disposeParams } from '../../src/core/params.ts';
import { Rank } from '../../src/core/rank.ts';
import { syntheticSlides, SyntheticTiles, type TileSourceSpec } from '../../src/core/tiles.ts';
import type { SlideEntry } from '../../src/core/sampler.ts';
import { inProcessRanks } from '../../src/transport/in-process.ts';
import { microBatches } from '../../src/core/rank.ts';
import type { RankApi } from '../../src/core/protocol.ts';
import type { StepReport } from '../../src/core/report.ts';
import { median, timeIt } from './stats.ts';

/**
 * The encoders a benchmark can name: the two trained from scratch (their width from --width) and
 * pretrained families at their published sizes (src/core/models/vit.ts, tv-resnet.ts).
 */
export const BENCH_ENCODERS = ['tiny-cnn', 'resnet', 'vit-s16', 'vit-b16', 'vit-l16', 'resnet50-trunc'] as const;
export type BenchEncoder = (typeof BENCH_ENCODERS)[number];

/** Pretrained architectures by name: timm's ViT-S/B/L with 16 px patches, CLAM's truncated ResNet-50 (1024-d). */
export const PRETRAINED_ENCODERS: Record<Exclude<BenchEncoder, 'tiny-cnn' | 'resnet'>, Partial<EncoderConfig>> = {
  'vit-s16': { kind: 'vit', patch: 16, dim: 384, blocks: 12, heads: 6, mlpHidden: 1536 },
  'vit-b16': { kind: 'vit', patch: 16, dim: 768, blocks: 12, heads: 12, mlpHidden: 3072 },
  'vit-l16': { kind: 'vit', patch: 16, dim: 1024, blocks: 24, heads: 16, mlpHidden: 4096 },
  'resnet50-trunc': { kind: 'tv-resnet', width: 64, depth: 50, truncate: true },
};

export const isPretrainedEncoder = (e: string): e is keyof typeof PRETRAINED_ENCODERS => e in PRETRAINED_ENCODERS;

/** The encoder config of a benchmark encoder name (`width` applies to tiny-cnn and resnet only). */
export function benchEncoderConfig(encoder: BenchEncoder, width: number): EncoderConfig {
  return EncoderSchema.parse(isPretrainedEncoder(encoder) ? PRETRAINED_ENCODERS[encoder] : { kind: encoder, width });
}

export interface BenchShape {
  encoder: BenchEncoder;
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
    encoder: benchEncoderConfig(s.encoder, s.width), dropout: 0, backend: s.backend, ...extra,
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
  /** Mean ms per step of each communication phase on the critical path, and bytes per step by phase. */
  commMs?: { gather: number; scatter: number; reduce: number };
  bytesByPhase?: Record<string, number>;
}

function sharesOf(reports: StepReport[]): Pick<ThroughputRow, 'commMs' | 'bytesByPhase'> & { shares: Record<string, number>; commShare: number; bytesPerStep: number } {
  const sum: Record<string, number> = {};
  const byPhase: Record<string, number> = {};
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
    for (const [k, v] of Object.entries(r.bytes)) byPhase[k] = (byPhase[k] ?? 0) + (v ?? 0) / reports.length;
  }
  const shares: Record<string, number> = {};
  for (const [k, v] of Object.entries(sum)) shares[k] = v / wall;
  const commShare = shares.gather + shares.scatter + shares.reduce;
  const per = (k: string) => sum[k] / reports.length;
  return { shares, commShare, bytesPerStep: bytes / reports.length, commMs: { gather: per('gather'), scatter: per('scatter'), reduce: per('reduce') }, bytesByPhase: byPhase };
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
    const stepMs = median(await timeIt(() => ref.trainStep(), steps, warmup));
    return { mode: 'single-graph reference', ranks: null, k: s.k, stepMs, tilesPerSec: (s.k / stepMs) * 1000 };
  } finally {
    ref.dispose();
  }
}

/** The encoder's forward + backward alone on K tiles in micro-batches: bounds any distribution scheme. */
export async function benchEncoderOnly(s: BenchShape, steps: number, warmup: number): Promise<ThroughputRow> {
  const cfg = benchConfig(s);
  const specs = encoderSpecs(cfg.encoder, cfg.tileSize);
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
    const stepMs = median(await timeIt(step, steps, warmup));
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
  const specs = encoderSpecs(cfg.encoder, cfg.tileSize);
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
  /** Host (JS) bytes of the preprocessed inputs [K, S, S, 3] float32 the rank keeps for the recompute: computed, not measured. */
  hostInputBytes: number;
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
 * Doubles K for the single-graph reference from `startK` until a step fails for real (out of
 * memory, a buffer over the adapter's binding limit) or its peak tensor bytes pass `capBytes`, a
 * budget standing in for a GPU's memory ("fails"). Returns the largest K that ran within it.
 */
export async function largestReferenceK(s: BenchShape, startK: number, capBytes: number, maxK = 1 << 16): Promise<{ largestK: number; stoppedBy: string; capBytes: number; peaks: { k: number; peakBytes: number }[] }> {
  const peaks: { k: number; peakBytes: number }[] = [];
  let largestK = 0;
  for (let k = startK; k <= maxK; k *= 2) {
    try {
      const peak = await referencePeakBytes({ ...s, k });
      peaks.push({ k, peakBytes: peak });
      if (peak > capBytes) return { largestK, stoppedBy: `K=${k} needs ${fmtMiB(peak)} MiB, over the ${fmtMiB(capBytes)} MiB budget`, capBytes, peaks };
      largestK = k;
    } catch (e) {
      return { largestK, stoppedBy: `K=${k} failed: ${(e as Error).message.slice(0, 200)}`, capBytes, peaks };
    }
  }
  return { largestK, stoppedBy: `reached maxK ${maxK}`, capBytes, peaks };
}

const fmtMiB = (b: number) => (b / 2 ** 20).toFixed(1);

export interface DecodePathRow {
  /** Engine option: the next step's tiles are read while this step computes. */
  prefetch: boolean;
  ranks: number;
  k: number;
  steps: number;
  /** Median wall ms per step. */
  stepMs: number;
  /**
   * Median per step of the decode ms left on the critical path: the slowest rank's `decode`
   * phase (with prefetch: the wait for tiles read ahead, plus augmentation and normalisation).
   */
  decodeMs: number;
  decodeShare: number;
  /** Steps in which every rank found its tiles already being read ahead. */
  prefetchedSteps: number;
  /** Median per step of the slowest rank's forward ms, for scale. */
  forwardMs: number;
}

/**
 * Engine steps on slide files (real decode inside the ranks) with prefetch on or off: how much
 * of the decode stays on a step's critical path. `data` names the slides and where their tiles are.
 */
export async function benchDecodeOnCriticalPath(
  s: BenchShape, n: number, steps: number, warmup: number, makeRanks: RankFactory,
  data: { slides: SlideEntry[]; tiles: TileSourceSpec }, prefetch: boolean,
): Promise<DecodePathRow> {
  const cfg = benchConfig(s, { ranks: n });
  const ranks = makeRanks(n);
  const engine = new Engine(cfg, data.slides, ranks, { prefetch });
  try {
    await engine.init(data.tiles);
    for (let i = 0; i < warmup; i++) await engine.trainStep();
    const reports: StepReport[] = [];
    for (let i = 0; i < steps; i++) reports.push(await engine.trainStep());
    const slowest = (r: StepReport, p: 'decode' | 'forward') => Math.max(0, ...r.perRank.map((x) => x.ms[p] ?? 0));
    const stepMs = median(reports.map((r) => r.wallMs));
    const decodeMs = median(reports.map((r) => slowest(r, 'decode')));
    return {
      prefetch, ranks: n, k: s.k, steps, stepMs, decodeMs, decodeShare: decodeMs / stepMs,
      prefetchedSteps: reports.filter((r) => r.perRank.every((x) => x.prefetched)).length,
      forwardMs: median(reports.map((r) => slowest(r, 'forward'))),
    };
  } finally {
    await engine.dispose().catch(() => undefined);
    for (const r of ranks) (r as { terminate?: () => void }).terminate?.();
  }
}

/**
 * Switches src/kernels/cpu-kernels.ts (our Conv2DBackpropFilter and BatchMatMul) on (`ours`) or
 * off; returns a function that puts back what was active before. Why it matters here: tfjs's cpu
 * Conv2DBackpropFilter reads every multiply-add's operands through TensorBuffer.get, 95% of a
 * tiny-CNN backward, which made K = 4096 take minutes. Ours allocate exactly what the stock
 * kernels allocate, so peak tensor bytes do not change; the memory section checks both claims.
 */
export function useOurCpuKernels(ours = true): () => void {
  const was = cpuTrainingKernelsActive();
  registerCpuTrainingKernels(ours);
  return () => registerCpuTrainingKernels(was);
}

/** Largest relative L2 difference between the fast and the stock cpu filter gradient on the encoders' conv shapes. */
export function checkFastCpuFilterGrad(): number {
  type Shape4 = [number, number, number, number];
  const cases: [Shape4, Shape4, number, 'same' | 'valid'][] = [
    [[3, 16, 16, 3], [3, 3, 3, 8], 2, 'same'], [[2, 9, 7, 8], [3, 3, 8, 16], 1, 'same'],
    [[2, 32, 32, 3], [7, 7, 3, 8], 2, 'same'], [[2, 8, 8, 16], [1, 1, 16, 32], 2, 'same'], [[2, 10, 10, 4], [5, 5, 4, 6], 1, 'valid'],
  ];
  const grads = () => cases.map(([xs, fs, s, pad], i) => tf.tidy(() => {
    const x = tf.randomNormal(xs, 0, 1, 'float32', 10 + i) as tf.Tensor4D;
    const w0 = tf.randomNormal(fs, 0, 1, 'float32', 30 + i) as tf.Tensor4D;
    const dy = tf.randomNormal(tf.conv2d(x, w0, s, pad).shape, 0, 1, 'float32', 20 + i);
    // dL/dW of sum(conv(x, w) * dy): runs Conv2DBackpropFilter
    return tf.grad((w) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, s, pad), dy)))(w0);
  }));
  const restoreStock = useOurCpuKernels(false);
  const stock = grads();
  restoreStock();
  const restore = useOurCpuKernels();
  let fast: tf.Tensor[];
  try {
    fast = grads();
  } finally {
    restore();
  }
  const worst = Math.max(...stock.map((a, i) => tf.tidy(() => tf.norm(tf.sub(a, fast[i])).div(tf.norm(a)).dataSync()[0])));
  tf.dispose([...stock, ...fast]);
  return worst;
}

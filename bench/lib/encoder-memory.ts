// Memory per rank of one encoder micro-batch, for the pretrained encoders (the paper's Fig. 1 in
// our setting): parameters, the optimizer-side bytes computed from the parameter count, and the
// measured peak tfjs tensor bytes of what Rank.shareOfGradient runs for one micro-batch
// (tf.variableGrads of sum(encoderForward(x) * dy)), beside src/core/memory-estimate.ts's estimate.
// Every byte figure marked "measured" comes from tf.profile; nothing is asserted.
import os from 'node:os';
import { tf } from '../../src/core/tf.ts';
import { featureDim } from '../../src/core/config.ts';
import { encoderForward, encoderSpecs } from '../../src/core/models/encoder.ts';
import { estimateEncoderMemory, type MemoryEstimate } from '../../src/core/memory-estimate.ts';
import { countParams, createParams, disposeParams } from '../../src/core/params.ts';
import { benchConfig, type BenchShape } from './engine-bench.ts';

const F32 = 4;

export interface EncoderMemoryRow {
  encoder: string;
  tileSize: number;
  microBatch: number;
  params: number;
  /**
   * Computed, not measured: 16 B per parameter = float32 weights (4) + the rank's float32 gradient
   * accumulator (4) + AdamW's first and second moments (4 + 4).
   */
  parameterStateBytes: number;
  /** Measured: tfjs bytes live before the micro-batch (the weights, plus the input x and dy). */
  liveBeforeBytes: number;
  /** Measured: of those, the weights (tf.memory().numBytes after creating the parameters). */
  weightBytes: number;
  /** Measured: tf.profile(...).peakBytes of the micro-batch's forward + backward (absolute, all live tensors). */
  peakBytes: number;
  /**
   * Measured: peakBytes - liveBeforeBytes, the micro-batch's own peak: the activations the tape
   * keeps plus the gradients variableGrads returns (up to 4 B per parameter).
   */
  peakAboveBytes: number;
  /** Computed: 4 B per parameter, this micro-batch's gradients (part of peakAboveBytes at the end of the backward). */
  microBatchGradientBytes: number;
  /** Measured: the largest tensor any kernel produced (from tf.profile's output shapes). */
  largestTensorBytes: number;
  /** parameterStateBytes + peakAboveBytes (+ the input x and dy, included in liveBeforeBytes - weights). */
  totalBytes: number;
  /** src/core/memory-estimate.ts for the same encoder, tile size and micro-batch. */
  estimate: MemoryEstimate;
  /** Wall ms of the profiled (first, cold) forward + backward. */
  coldMs: number;
  /** Wall ms of a second, unprofiled forward + backward (null when the first took longer than warmMaxSeconds). */
  warmMs: number | null;
  /**
   * This process's CPU ms (user + system) over the same runs. tfjs's cpu backend computes on one
   * thread, so on a machine shared with other jobs this is closer to the unloaded wall time.
   */
  coldCpuMs: number;
  warmCpuMs: number | null;
  /** The 1-minute load average when the row started and ended (2 cores here: above 2 means others were computing too). */
  loadavg: [number, number];
  /** Kernels the profiled run executed. */
  kernels: number;
  /** The profiled run's kernel time by kernel name, largest first (top 6; cpu: wall ms per kernel). */
  topKernels: { kernel: string; ms: number; calls: number }[];
  note?: string;
}

export interface SkippedMemoryRow {
  encoder: string;
  tileSize: number;
  microBatch: number;
  skipped: string;
}

export interface EncoderMemoryOptions {
  /** A row whose predicted forward + backward (one run, linear in m from the previous row) takes longer than this is skipped. */
  maxSeconds: number;
  /** A second, warm, timed run follows only when the first took at most this. */
  warmMaxSeconds: number;
  /** Predicted bytes above this skip the row (the machine's free memory, with headroom). */
  maxBytes: number;
  log: (s: string) => void;
}

/**
 * For one encoder at s.tileSize, each micro-batch of `microBatches` (ascending): the rows above.
 * The parameters are created once (weights live before every row); x and dy are made per row.
 */
export async function encoderMemoryRows(s: BenchShape, microBatches: number[], o: EncoderMemoryOptions): Promise<(EncoderMemoryRow | SkippedMemoryRow)[]> {
  const cfg = benchConfig(s);
  const enc = cfg.encoder;
  const specs = encoderSpecs(enc, cfg.tileSize);
  const P = countParams(specs);
  const d = featureDim(enc);
  const out: (EncoderMemoryRow | SkippedMemoryRow)[] = [];
  const before0 = tf.memory().numBytes;
  const t0 = performance.now();
  const params = createParams(specs, cfg.seed);
  const vars = specs.map((sp) => params.get(sp.name)!);
  const weightBytes = tf.memory().numBytes - before0;
  o.log(`  ${s.encoder}: ${P.toLocaleString('en-US')} parameters, weights ${fmtMiB(weightBytes)} MiB (created in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  let last: EncoderMemoryRow | null = null;
  try {
    for (const m of [...microBatches].sort((a, b) => a - b)) {
      const estimate = estimateEncoderMemory(enc, cfg.tileSize, m);
      const base = { encoder: s.encoder, tileSize: cfg.tileSize, microBatch: m };
      // Predictions from the previous (smaller) micro-batch of this encoder, linear in m.
      if (last) {
        const scale = m / last.microBatch;
        const secs = (Math.min(last.coldMs, last.warmMs ?? Infinity) * scale) / 1000;
        if (secs > o.maxSeconds) {
          out.push({ ...base, skipped: `predicted ${secs.toFixed(0)} s for one forward + backward (${scale.toFixed(1)} x micro-batch ${last.microBatch}'s) > --memory-max-seconds ${o.maxSeconds}` });
          o.log(`  ${s.encoder} micro-batch ${m}: skipped, ${(out.at(-1) as SkippedMemoryRow).skipped}`);
          continue;
        }
      }
      const predictedBytes = Math.max(estimate.totalBytes, last ? last.peakBytes + (last.peakAboveBytes * (m - last.microBatch)) / last.microBatch : 0);
      if (predictedBytes > o.maxBytes) {
        out.push({ ...base, skipped: `predicted ${fmtMiB(predictedBytes)} MiB > ${fmtMiB(o.maxBytes)} MiB allowed (free memory with headroom)` });
        o.log(`  ${s.encoder} micro-batch ${m}: skipped, ${(out.at(-1) as SkippedMemoryRow).skipped}`);
        continue;
      }
      const x = tf.randomUniform([m, cfg.tileSize, cfg.tileSize, 3], -2, 2, 'float32', 1);
      const dy = tf.randomNormal([m, d], 0, 1, 'float32', 2);
      // What Rank.shareOfGradient runs for one micro-batch (the accumulator's add comes after it).
      const once = async () => {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(encoderForward(params, enc, x), dy)) as tf.Scalar, vars);
        await value.data();
        tf.dispose([value, ...Object.values(grads)]);
      };
      try {
        const liveBeforeBytes = tf.memory().numBytes;
        const load0 = os.loadavg()[0];
        let t = performance.now();
        let c = process.cpuUsage();
        const info = await tf.profile(once);
        const coldMs = performance.now() - t;
        const coldCpuMs = cpuMs(process.cpuUsage(c));
        const largest = Math.max(0, ...info.kernels.flatMap((k) => k.outputShapes.map((sh) => (sh ?? []).reduce((a, b) => a * b, 1) * F32)));
        const by = new Map<string, { ms: number; calls: number }>();
        for (const k of info.kernels) {
          const e = by.get(k.name) ?? { ms: 0, calls: 0 };
          e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
          e.calls += 1;
          by.set(k.name, e);
        }
        const topKernels = [...by.entries()].map(([kernel, e]) => ({ kernel, ms: Math.round(e.ms), calls: e.calls })).sort((a, b) => b.ms - a.ms).slice(0, 6);
        let warmMs: number | null = null;
        let warmCpuMs: number | null = null;
        let note: string | undefined;
        if (coldMs / 1000 <= o.warmMaxSeconds) {
          t = performance.now();
          c = process.cpuUsage();
          await once();
          warmMs = performance.now() - t;
          warmCpuMs = cpuMs(process.cpuUsage(c));
        } else {
          note = `no warm run: the first (cold, profiled) run took ${(coldMs / 1000).toFixed(0)} s > --memory-warm-max-seconds ${o.warmMaxSeconds}`;
        }
        const parameterStateBytes = 4 * F32 * P;
        const peakAboveBytes = info.peakBytes - liveBeforeBytes;
        const row: EncoderMemoryRow = {
          ...base, params: P, parameterStateBytes, liveBeforeBytes, weightBytes, peakBytes: info.peakBytes, peakAboveBytes,
          microBatchGradientBytes: F32 * P, largestTensorBytes: largest, totalBytes: parameterStateBytes + peakAboveBytes + (liveBeforeBytes - weightBytes),
          estimate, coldMs, warmMs, coldCpuMs, warmCpuMs, loadavg: [load0, os.loadavg()[0]], kernels: info.kernels.length, topKernels, ...(note ? { note } : {}),
        };
        out.push(row);
        last = row;
        o.log(`  ${s.encoder} micro-batch ${m}: peak above weights ${fmtMiB(peakAboveBytes)} MiB (estimate activations ${fmtMiB(estimate.activationBytes)} + gradients ${fmtMiB(F32 * P)} MiB), total ${fmtMiB(row.totalBytes)} MiB (estimate ${fmtMiB(estimate.totalBytes)}), forward+backward ${(coldMs / 1000).toFixed(1)} s cold (cpu ${(coldCpuMs / 1000).toFixed(1)} s), ${warmMs === null ? 'no warm run' : `${(warmMs / 1000).toFixed(1)} s warm (cpu ${(warmCpuMs! / 1000).toFixed(1)} s)`}, load ${load0.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}; kernel ms: ${topKernels.map((k) => `${k.kernel} ${k.ms} (${k.calls})`).join(', ')}`);
      } finally {
        tf.dispose([x, dy]);
      }
    }
  } finally {
    disposeParams(params);
  }
  return out;
}

const fmtMiB = (b: number) => (b / 2 ** 20).toFixed(1);
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

/** Markdown table of the rows (skipped rows say why). */
export function encoderMemoryTable(rows: (EncoderMemoryRow | SkippedMemoryRow)[]): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : b < 100 * 2 ** 20 ? 1 : 0);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}`;
  const secs = (ms: number) => (ms / 1000).toFixed(ms < 10_000 ? 2 : 1);
  const head = ['encoder', 'px', 'micro-batch', 'params (M)', 'weights + grad acc + AdamW MiB (16 B/param)', 'measured peak above weights MiB', 'estimate act. + grads MiB', 'est/meas', 'measured total MiB', 'estimate total MiB', 'est/meas', 'largest tensor MiB (meas / est)', 'fwd+bwd wall s', 'fwd+bwd process cpu s', 'load (1 min)'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    if ('skipped' in r) {
      lines.push(`| ${r.encoder} | ${r.tileSize} | ${r.microBatch} | skipped: ${r.skipped} |${' |'.repeat(head.length - 4)}`);
      continue;
    }
    const estAct = r.estimate.activationBytes + r.microBatchGradientBytes;
    lines.push(`| ${[
      r.encoder, r.tileSize, r.microBatch, (r.params / 1e6).toFixed(2), mib(r.parameterStateBytes), mib(r.peakAboveBytes), mib(estAct), ratio(estAct, r.peakAboveBytes),
      mib(r.totalBytes), mib(r.estimate.totalBytes), ratio(r.estimate.totalBytes, r.totalBytes), `${mib(r.largestTensorBytes)} / ${mib(r.estimate.largestTensorBytes)}`,
      r.warmMs === null ? `${secs(r.coldMs)} (cold)` : secs(r.warmMs),
      r.warmCpuMs === null ? `${secs(r.coldCpuMs)} (cold)` : secs(r.warmCpuMs),
      `${r.loadavg[0].toFixed(1)}-${r.loadavg[1].toFixed(1)}`,
    ].join(' | ')} |`);
  }
  return lines.join('\n');
}

// Exports: metrics as CSV and JSON, weights in the tfjs weights format (model.json with a
// weightsManifest + one little-endian float32 .bin, loadable with tf.io.loadWeights), and import
// of the same files back into a run.
import type { Config } from '../core/config.ts';
import type { ParamSpec } from '../core/params.ts';
import { sizeOf, unpack } from '../core/params.ts';
import { encoderSpecs } from '../core/models/encoder.ts';
import { exportPretrained, type PretrainedEncoder } from '../core/pretrained.ts';
import { writeSafetensors } from '../core/weights/index.ts';
import type { RankInfo } from '../core/protocol.ts';
import { PHASES } from '../core/report.ts';
import { mean, median } from '../core/stats.ts';
import type { RunHistory } from './run.ts';

export interface MetricsJson {
  kind: 'slide-lab-metrics';
  version: 1;
  hash: string;
  config: Config;
  ranks: RankInfo[];
  steps: {
    step: number; epoch: number; slide: string; label: number; loss: number; prob: number; lr: number; k: number; ranks: number;
    wallMs: number; tilesPerSec: number; replicaDrift: number; main: Record<string, number>; bytes: Record<string, number>;
  }[];
  evals: {
    epoch: number; step: number; auc: number; aucLower: number; aucUpper: number; trainLoss: number; wallMs: number; slides: { slide: string; label: number; prob: number }[];
    /** Attention for lesion vs other tiles on positive validation slides with ground truth (NaN without): AUC, precision@5 and its chance level. */
    attentionAuc: number; attentionPrecisionAt5: number; attentionChance: number; attentionSlides: number;
  }[];
  summary: { steps: number; firstLoss: number; lastLoss: number; finalTrainLoss: number; finalAuc: number; tilesPerSec: number; medianTilesPerSec: number; backend: string[]; adapters: string[] };
}

export function metricsJson(history: RunHistory, cfg: Config, hash: string, ranks: RankInfo[]): MetricsJson {
  const steps = history.steps.map((s) => ({
    step: s.step, epoch: s.epoch, slide: s.slideId, label: s.label, loss: s.loss, prob: s.prob, lr: s.lr, k: s.k, ranks: s.ranks,
    wallMs: s.wallMs, tilesPerSec: (s.k * 1000) / s.wallMs, replicaDrift: s.replicaDrift,
    main: s.main as Record<string, number>, bytes: s.bytes as Record<string, number>,
  }));
  const evals = history.evals.map((e) => ({
    epoch: e.epoch, step: e.step, auc: e.auc, aucLower: e.band.auc.lower, aucUpper: e.band.auc.upper, trainLoss: e.trainLoss, wallMs: e.wallMs,
    slides: e.slides.map((s) => ({ slide: s.slideId, label: s.label, prob: s.prob })),
    attentionAuc: e.attention?.auc ?? NaN, attentionPrecisionAt5: e.attention?.precisionAtK ?? NaN, attentionChance: e.attention?.chance ?? NaN, attentionSlides: e.attention?.slides ?? 0,
  }));
  const spe = Math.max(1, new Set(history.steps.map((s) => s.slideId)).size);
  const tail = history.steps.slice(-spe);
  const wall = history.steps.reduce((a, s) => a + s.wallMs, 0);
  return {
    kind: 'slide-lab-metrics', version: 1, hash, config: cfg, ranks, steps, evals,
    summary: {
      steps: steps.length,
      firstLoss: steps[0]?.loss ?? NaN,
      lastLoss: steps[steps.length - 1]?.loss ?? NaN,
      finalTrainLoss: mean(tail.map((s) => s.loss)),
      finalAuc: evals[evals.length - 1]?.auc ?? NaN,
      tilesPerSec: wall > 0 ? (history.steps.reduce((a, s) => a + s.k, 0) * 1000) / wall : NaN,
      // Steady state: the median step, so the warm-up steps (shader compilation) do not dominate.
      medianTilesPerSec: median(steps.map((s) => s.tilesPerSec)),
      backend: ranks.map((r) => r.backend),
      adapters: ranks.map((r) => (r.adapter ? [r.adapter.vendor, r.adapter.architecture, r.adapter.description].filter(Boolean).join(' ') || 'unnamed adapter' : `cpu (${r.fallbackReason ?? 'by choice'})`)),
    },
  };
}

const csvCell = (v: unknown) => {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v ?? '');
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** One row per step (with per-phase main-context ms) and one per validation, in one CSV. */
export function metricsCsv(history: RunHistory): string {
  const header = ['kind', 'step', 'epoch', 'slide', 'label', 'loss', 'prob', 'lr', 'k', 'ranks', 'wall_ms', 'tiles_per_s', ...PHASES.map((p) => `main_${p}_ms`), 'auc', 'auc_lower', 'auc_upper', 'train_loss', 'attention_auc', 'attention_precision_at_5'];
  const rows: unknown[][] = history.steps.map((s) => [
    'step', s.step, s.epoch, s.slideId, s.label, s.loss, s.prob, s.lr, s.k, s.ranks, s.wallMs, (s.k * 1000) / s.wallMs, ...PHASES.map((p) => s.main[p] ?? ''), '', '', '', '', '', '',
  ]);
  for (const e of history.evals) rows.push(['eval', e.step, e.epoch, '', '', '', '', '', '', '', e.wallMs, '', ...PHASES.map(() => ''), e.auc, e.band.auc.lower, e.band.auc.upper, e.trainLoss, e.attention?.auc ?? NaN, e.attention?.precisionAtK ?? NaN]);
  return toCsv(header, rows);
}

export interface WeightsArtifacts {
  modelJson: string;
  weightsBin: ArrayBuffer;
}

/** tfjs weights format: encoder (enc.*) then aggregator (agg.*) tensors, float32, one shard. */
export function exportWeights(encoderSpecs: ParamSpec[], encoder: Float32Array, aggSpecs: ParamSpec[], aggregator: Float32Array, meta: { hash: string; step: number }): WeightsArtifacts {
  const bin = new Float32Array(encoder.length + aggregator.length);
  bin.set(encoder, 0);
  bin.set(aggregator, encoder.length);
  const weights = [...encoderSpecs, ...aggSpecs].map((s) => ({ name: s.name, shape: s.shape, dtype: 'float32' }));
  const modelJson = {
    format: 'slide-lab-weights',
    generatedBy: 'Slide Lab',
    convertedBy: null,
    weightsManifest: [{ paths: ['weights.bin'], weights }],
    userDefinedMetadata: { hash: meta.hash, step: meta.step, encoderParams: encoder.length, aggregatorParams: aggregator.length },
  };
  return { modelJson: JSON.stringify(modelJson, null, 1), weightsBin: bin.buffer };
}

/** Reads weights exported above back into packed encoder and aggregator arrays; checks every shape. */
export function importWeights(modelJson: string, weightsBin: ArrayBuffer, encoderSpecs: ParamSpec[], aggSpecs: ParamSpec[]): { encoder: Float32Array; aggregator: Float32Array; step: number } {
  let parsed: { weightsManifest?: { weights: { name: string; shape: number[]; dtype: string }[] }[]; userDefinedMetadata?: { step?: number } };
  try {
    parsed = JSON.parse(modelJson);
  } catch {
    throw new Error('model.json is not JSON');
  }
  const listed = (parsed.weightsManifest ?? []).flatMap((g) => g.weights);
  const expected = [...encoderSpecs, ...aggSpecs];
  const problems: string[] = [];
  if (listed.length !== expected.length) problems.push(`model.json lists ${listed.length} tensors, the current model has ${expected.length}`);
  expected.forEach((s, i) => {
    const w = listed[i];
    if (w && (w.name !== s.name || w.shape.join('x') !== s.shape.join('x') || w.dtype !== 'float32')) problems.push(`${s.name}: expected [${s.shape}] float32, file has ${w.name} [${w.shape}] ${w.dtype}`);
  });
  const encN = encoderSpecs.reduce((n, s) => n + sizeOf(s.shape), 0);
  const aggN = aggSpecs.reduce((n, s) => n + sizeOf(s.shape), 0);
  if (weightsBin.byteLength !== (encN + aggN) * 4) problems.push(`weights.bin holds ${weightsBin.byteLength} bytes, the model needs ${(encN + aggN) * 4}`);
  if (problems.length) throw new Error(`these weights do not fit the current configuration: ${problems.slice(0, 3).join('; ')}`);
  const all = new Float32Array(weightsBin.slice(0));
  return { encoder: all.slice(0, encN), aggregator: all.slice(encN), step: parsed.userDefinedMetadata?.step ?? 0 };
}

/**
 * [P] encoder weights as .safetensors: a pretrained family's own names and PyTorch layouts
 * (loadable back into timm / Hugging Face / torchvision, and into the lab) when the run started
 * from `pretrained`; otherwise the lab's names and layouts. The hash and step go in the metadata.
 */
export function encoderSafetensors(cfg: Config, weights: Float32Array, run: { hash: string; step: number; pretrained: PretrainedEncoder | null }): { name: string; bytes: Uint8Array } {
  const { hash, step, pretrained: p } = run;
  const metadata = { format: 'pt', 'slide-lab.hash': hash, 'slide-lab.step': String(step) };
  if (p) {
    const stem = p.file.replace(/\.(safetensors|bin|pt|pth)$/i, '');
    return { name: `${stem}-step${step}.safetensors`, bytes: writeSafetensors(exportPretrained(p.family, cfg.encoder, cfg.tileSize, weights), { ...metadata, 'slide-lab.family': p.family }) };
  }
  const specs = encoderSpecs(cfg.encoder, cfg.tileSize);
  const views = unpack(specs, weights);
  const tensors = specs.map((sp) => ({ name: sp.name, shape: sp.shape, data: views.get(sp.name)! }));
  return { name: `${cfg.encoder.kind}-step${step}.safetensors`, bytes: writeSafetensors(tensors, { ...metadata, 'slide-lab.family': 'lab' }) };
}

// A run trained elsewhere, brought back into the lab: a checkpoint in the lab's own names and
// layouts (`checkpoint.safetensors` from `python -m slidelab.train`, or an encoder + aggregator
// export) and, optionally, the run's metrics JSON (the lab's metricsJson shape). The result is the
// lab's packed weights [P_enc], [P_agg] and a history the charts, ROC and heatmaps read.
import { featureDim, attentionDim, parseConfig, type Config } from '../core/config.ts';
import { aggregatorSpecs } from '../core/models/aggregator.ts';
import { encoderSpecs } from '../core/models/encoder.ts';
import { countParams, unpack, type ParamSpec } from '../core/params.ts';
import type { EvalReport, StepReport } from '../core/report.ts';
import { openWeightFile } from '../core/weights/index.ts';
import { parseLabHash } from './presets.ts';
import { summarizeEval, type RunHistory } from './run.ts';

export interface ImportedRun {
  /** The lab hash the run was trained with (config + lab options). */
  hash: string;
  step: number;
  /** [P_enc] and [P_agg] in spec order. */
  encoder: Float32Array;
  aggregator: Float32Array;
  /** From the metrics file; empty when none was given. */
  history: RunHistory;
  /** Where it was trained, in words ("torch.distributed gloo, 2 encoder ranks"). */
  source: string;
}

type MetricsStep = { step: number; epoch: number; slide: string; label: number; loss: number; prob: number; lr: number; weightDecay?: number; k: number; ranks: number; wallMs: number; replicaDrift: number; main?: Record<string, number>; bytes?: Record<string, number>; attention?: { tileIndices: number[]; scores: number[] } };
type MetricsEval = { epoch: number; step: number; auc: number; trainLoss?: number; wallMs?: number; slides: { slide: string; label: number; prob: number; attention?: { tileIndices: number[]; scores: number[] } }[] };
interface MetricsFile {
  kind: string;
  hash: string;
  steps: MetricsStep[];
  evals: MetricsEval[];
  source?: { runtime?: string; backend?: string; encoderRanks?: number; torch?: string };
}

/** Packs the named tensors of `file` for `specs`; names every missing or mis-shaped one. */
async function pack(file: Awaited<ReturnType<typeof openWeightFile>>, specs: ParamSpec[]): Promise<Float32Array> {
  const out = new Float32Array(countParams(specs));
  const views = unpack(specs, out);
  const problems: string[] = [];
  for (const s of specs) {
    const t = file.tensors.get(s.name);
    if (!t) problems.push(`missing ${s.name}`);
    else if (t.shape.join(',') !== s.shape.join(',')) problems.push(`${s.name} is [${t.shape}], the configuration needs [${s.shape}]`);
    else views.get(s.name)!.set(await t.read());
  }
  if (problems.length) throw new Error(`${file.file}: does not fit this run's model: ${problems.slice(0, 4).join('; ')}${problems.length > 4 ? `; and ${problems.length - 4} more` : ''}`);
  return out;
}

/** The metrics file's history as the lab's step reports and validation summaries. */
export function historyFromMetrics(m: MetricsFile, cfg: Config): RunHistory {
  const d = featureDim(cfg.encoder);
  const steps: StepReport[] = m.steps.map((s) => ({
    kind: 'step', step: s.step, epoch: s.epoch, slideId: s.slide, label: s.label as 0 | 1, loss: s.loss, prob: s.prob, lr: s.lr,
    weightDecay: s.weightDecay ?? NaN, k: s.k, ranks: s.ranks, d, perRank: [], main: s.main ?? {}, bytes: s.bytes ?? {}, mainTensors: 0,
    attention: s.attention ?? { tileIndices: [], scores: [] }, replicaDrift: s.replicaDrift, wallMs: s.wallMs, frozenEncoder: cfg.frozenEncoder, reduction: 'star',
  }));
  const evals = m.evals.map((e) => {
    const report: EvalReport = {
      kind: 'eval', epoch: e.epoch, step: e.step, auc: e.auc, wallMs: e.wallMs ?? 0,
      slides: e.slides.map((s) => ({ slideId: s.slide, label: s.label as 0 | 1, prob: s.prob, attention: s.attention ?? { tileIndices: [], scores: [] } })),
    };
    const losses = steps.filter((s) => s.step < e.step && s.step >= e.step - Math.max(1, new Set(steps.map((x) => x.slideId)).size)).map((s) => s.loss);
    return { ...summarizeEval(report, losses, cfg.seed), ...(e.trainLoss !== undefined ? { trainLoss: e.trainLoss } : {}) };
  });
  return { steps, evals };
}

/**
 * Reads a checkpoint (.safetensors with the lab's `enc.*` / `agg.*` names; its metadata names the
 * run's hash and step) and an optional metrics JSON. Throws, naming the file, on anything that
 * does not fit.
 */
export async function readImportedRun(files: { name: string; blob: Blob }[]): Promise<ImportedRun> {
  const ckpt = files.find((f) => /\.safetensors$/i.test(f.name));
  if (!ckpt) throw new Error('choose the run\'s checkpoint (.safetensors), and optionally its metrics.json');
  const metricsFile = files.find((f) => /\.json$/i.test(f.name));
  const file = await openWeightFile(ckpt.blob, ckpt.name);
  let metrics: MetricsFile | null = null;
  if (metricsFile) {
    try {
      metrics = JSON.parse(await metricsFile.blob.text()) as MetricsFile;
    } catch (e) {
      throw new Error(`${metricsFile.name}: not JSON (${(e as Error).message})`);
    }
    if (metrics.kind !== 'slide-lab-metrics') throw new Error(`${metricsFile.name}: not a Slide Lab metrics file (kind ${String(metrics.kind)})`);
  }
  const hash = file.metadata['slide-lab.hash'] ?? metrics?.hash;
  if (hash === undefined) throw new Error(`${ckpt.name}: no slide-lab.hash in its metadata and no metrics.json: the run's configuration is unknown`);
  if (metrics && file.metadata['slide-lab.hash'] !== undefined && metrics.hash !== file.metadata['slide-lab.hash']) throw new Error(`${metricsFile!.name} belongs to another run than ${ckpt.name}`);
  const cfg = parseConfig(parseLabHash(hash).config);
  const encoder = await pack(file, encoderSpecs(cfg.encoder, cfg.tileSize));
  const aggregator = await pack(file, aggregatorSpecs(featureDim(cfg.encoder), attentionDim(cfg.aggregator)));
  const step = Number(file.metadata['slide-lab.step'] ?? metrics?.steps.length ?? 0);
  const src = metrics?.source;
  const source = src?.runtime ? `${src.runtime}${src.backend ? ` ${src.backend}` : ''}${src.encoderRanks ? `, ${src.encoderRanks} encoder ranks` : ''}${src.torch ? `, torch ${src.torch}` : ''}` : (file.metadata['slide-lab.source'] ?? 'another run');
  return { hash, step, encoder, aggregator, history: metrics ? historyFromMetrics(metrics, cfg) : { steps: [], evals: [] }, source };
}

// Experiment runners: the K sweep (the same run at several K: final training loss and validation
// AUC against K) and frozen-encoder MIL against end-to-end fine-tuning from the same seed. Each
// run is a plain Trainer run; results are rows for a chart, a table and export. The runs of one
// experiment share one set of rank workers (RankPool): only the first run pays the workers'
// start and WebGPU warm-up, and every run still starts from the seed's fresh state.
import { parseConfig, type Config } from '../core/config.ts';
import type { RankApi } from '../core/protocol.ts';
import type { DataSet } from './dataset.ts';
import { Trainer, type EvalSummary } from './run.ts';
import { toCsv } from './export.ts';
import { RankPool } from './rank-pool.ts';
import { abortable, throwIfAborted } from './abort.ts';
import { mean } from '../core/stats.ts';

export interface ExperimentRow {
  experiment: 'k-sweep' | 'frozen-vs-e2e';
  /** What varies: "K=8" or "frozen" / "end to end". */
  variant: string;
  k: number;
  frozenEncoder: boolean;
  steps: number;
  /** Mean training loss over the last epoch's steps (or the last stepsPerEpoch steps). */
  finalTrainLoss: number;
  firstLoss: number;
  auc: number;
  aucLower: number;
  aucUpper: number;
  /** Training loss per step, for the chart. */
  losses: number[];
  tilesPerSec: number;
  /** Wall time of the run, start of its ranks included. */
  wallMs: number;
  /** Wall time of the run's first step (with fresh workers: WebGPU pipeline compilation). */
  firstStepMs: number;
  /** The run reused warm rank workers of an earlier run (no worker start or WebGPU warm-up). */
  reusedRanks: boolean;
}

export interface ExperimentOptions {
  cfg: Config;
  data: DataSet;
  makeRanks: (n: number) => RankApi[];
  /** Reuse one set of rank workers across the runs (default true); false starts fresh workers per run. */
  reuseRanks?: boolean;
  /** Stop each run after this many steps (0 = the config's epochs). */
  maxSteps?: number;
  /** Cancels the experiment: the call in flight is abandoned and every worker is terminated. */
  signal?: AbortSignal;
  /** [P] initial encoder weights of every run (a pretrained encoder); absent: the seed's random init. */
  encoderWeights?: Float32Array;
  onRunStart?: (variant: string, index: number, count: number) => void;
  onStep?: (variant: string, step: number, total: number, loss: number) => void;
  onRow?: (row: ExperimentRow) => void;
}

/** One run of an experiment; `reused()` says, once its ranks are up, whether they were warm. */
async function runOne(o: ExperimentOptions, makeRanks: (n: number) => RankApi[], reused: () => boolean, cfg: Config, experiment: ExperimentRow['experiment'], variant: string): Promise<ExperimentRow> {
  const t0 = performance.now();
  const trainer = await Trainer.create({ cfg, data: o.data, makeRanks, bootstrapRounds: 100, signal: o.signal, encoderWeights: o.encoderWeights });
  const reusedRanks = reused();
  try {
    const total = o.maxSteps ? Math.min(o.maxSteps, trainer.total) : trainer.total;
    let last: EvalSummary | undefined;
    for (let i = 0; i < total; i++) {
      throwIfAborted(o.signal);
      const { report, eval: ev } = await abortable(trainer.step(o.signal, i === total - 1), o.signal);
      if (ev) last = ev;
      o.onStep?.(variant, i + 1, total, report.loss);
    }
    const losses = trainer.history.steps.map((s) => s.loss);
    const spe = trainer.engine.sampler.stepsPerEpoch;
    const wall = trainer.history.steps.reduce((a, s) => a + s.wallMs, 0);
    const row: ExperimentRow = {
      experiment, variant, k: cfg.tiles, frozenEncoder: cfg.frozenEncoder, steps: losses.length,
      finalTrainLoss: mean(losses.slice(-spe)), firstLoss: losses[0] ?? NaN,
      auc: last?.auc ?? NaN, aucLower: last?.band.auc.lower ?? NaN, aucUpper: last?.band.auc.upper ?? NaN,
      losses, tilesPerSec: wall > 0 ? (trainer.history.steps.reduce((a, s) => a + s.k, 0) * 1000) / wall : NaN,
      wallMs: performance.now() - t0, firstStepMs: trainer.history.steps[0]?.wallMs ?? NaN, reusedRanks,
    };
    o.onRow?.(row);
    return row;
  } finally {
    await trainer.dispose();
  }
}

interface Variant {
  name: string;
  cfg: Config;
}

/** Runs the variants in order on one pool of workers (or fresh ones per run), then ends the workers. */
async function runVariants(o: ExperimentOptions, experiment: ExperimentRow['experiment'], variants: Variant[]): Promise<ExperimentRow[]> {
  const pool = o.reuseRanks === false ? null : new RankPool(o.makeRanks);
  const onAbort = () => pool?.terminate(); // a worker stuck in a long call ends now, not at its timeout
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const rows: ExperimentRow[] = [];
    for (const [i, v] of variants.entries()) {
      throwIfAborted(o.signal);
      o.onRunStart?.(v.name, i, variants.length);
      const inits = pool?.stats.inits;
      const reused = () => pool !== null && pool.stats.inits === inits;
      rows.push(await runOne(o, pool ? pool.lease : o.makeRanks, reused, v.cfg, experiment, v.name));
    }
    return rows;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    pool?.terminate();
  }
}

/** The same run (same seed) at each K. */
export function runKSweep(o: ExperimentOptions, ks: number[]): Promise<ExperimentRow[]> {
  return runVariants(o, 'k-sweep', ks.map((k) => ({ name: `K=${k}`, cfg: parseConfig({ ...o.cfg, tiles: k }) })));
}

/** Frozen encoder (only the aggregator learns) vs end-to-end fine-tuning, same seed and data. */
export function runFrozenVsEndToEnd(o: ExperimentOptions): Promise<ExperimentRow[]> {
  return runVariants(o, 'frozen-vs-e2e', [
    { name: 'frozen encoder', cfg: parseConfig({ ...o.cfg, frozenEncoder: true }) },
    { name: 'end to end', cfg: parseConfig({ ...o.cfg, frozenEncoder: false }) },
  ]);
}

export function experimentCsv(rows: ExperimentRow[]): string {
  return toCsv(
    ['experiment', 'variant', 'k', 'frozen_encoder', 'steps', 'first_loss', 'final_train_loss', 'auc', 'auc_lower', 'auc_upper', 'tiles_per_s', 'wall_ms', 'first_step_ms', 'reused_ranks'],
    rows.map((r) => [r.experiment, r.variant, r.k, r.frozenEncoder, r.steps, r.firstLoss, r.finalTrainLoss, r.auc, r.aucLower, r.aucUpper, r.tilesPerSec, r.wallMs, r.firstStepMs, r.reusedRanks]),
  );
}

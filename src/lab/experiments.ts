// Experiment runners: the K sweep (the same run at several K: final training loss and validation
// AUC against K) and frozen-encoder MIL against end-to-end fine-tuning from the same seed. Each
// run is a plain Trainer run; results are rows for a chart, a table and export.
import { parseConfig, type Config } from '../core/config.ts';
import type { RankApi } from '../core/protocol.ts';
import type { DataSet } from './dataset.ts';
import { Trainer, type EvalSummary } from './run.ts';
import { toCsv } from './export.ts';

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
  wallMs: number;
}

export interface ExperimentOptions {
  cfg: Config;
  data: DataSet;
  makeRanks: (n: number) => RankApi[];
  /** Stop each run after this many steps (0 = the config's epochs). */
  maxSteps?: number;
  signal?: AbortSignal;
  onRunStart?: (variant: string, index: number, count: number) => void;
  onStep?: (variant: string, step: number, total: number, loss: number) => void;
  onRow?: (row: ExperimentRow) => void;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

async function runOne(o: ExperimentOptions, cfg: Config, experiment: ExperimentRow['experiment'], variant: string): Promise<ExperimentRow> {
  const t0 = performance.now();
  const trainer = await Trainer.create({ cfg, data: o.data, makeRanks: o.makeRanks, bootstrapRounds: 100 });
  try {
    const total = o.maxSteps ? Math.min(o.maxSteps, trainer.total) : trainer.total;
    let last: EvalSummary | undefined;
    for (let i = 0; i < total; i++) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('stopped');
      const { report, eval: ev } = await trainer.step(o.signal, i === total - 1);
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
      wallMs: performance.now() - t0,
    };
    o.onRow?.(row);
    return row;
  } finally {
    await trainer.dispose();
  }
}

/** The same run (same seed) at each K. */
export async function runKSweep(o: ExperimentOptions, ks: number[]): Promise<ExperimentRow[]> {
  const rows: ExperimentRow[] = [];
  for (const [i, k] of ks.entries()) {
    o.onRunStart?.(`K=${k}`, i, ks.length);
    rows.push(await runOne(o, parseConfig({ ...o.cfg, tiles: k }), 'k-sweep', `K=${k}`));
  }
  return rows;
}

/** Frozen encoder (only the aggregator learns) vs end-to-end fine-tuning, same seed and data. */
export async function runFrozenVsEndToEnd(o: ExperimentOptions): Promise<ExperimentRow[]> {
  const rows: ExperimentRow[] = [];
  const variants: [string, boolean][] = [['frozen encoder', true], ['end to end', false]];
  for (const [i, [name, frozen]] of variants.entries()) {
    o.onRunStart?.(name, i, variants.length);
    rows.push(await runOne(o, parseConfig({ ...o.cfg, frozenEncoder: frozen }), 'frozen-vs-e2e', name));
  }
  return rows;
}

export function experimentCsv(rows: ExperimentRow[]): string {
  return toCsv(
    ['experiment', 'variant', 'k', 'frozen_encoder', 'steps', 'first_loss', 'final_train_loss', 'auc', 'auc_lower', 'auc_upper', 'tiles_per_s', 'wall_ms'],
    rows.map((r) => [r.experiment, r.variant, r.k, r.frozenEncoder, r.steps, r.firstLoss, r.finalTrainLoss, r.auc, r.aucLower, r.aucUpper, r.tilesPerSec, r.wallMs]),
  );
}

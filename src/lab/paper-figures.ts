// The paper-figures experiment: R repeated runs per arm (K values end to end, K values with the
// frozen encoder), each repeat on its own Monte Carlo cross-validation split, every arm of a
// repeat on the same split. All runs share one set of rank workers (RankPool): only the first
// run starts workers and warms WebGPU up; each later run resets the replicas to the initial
// (pretrained) weights and a fresh optimizer. The figures' data: paper-figures-data.ts.
import { parseConfig, type Config } from '../core/config.ts';
import type { RankApi } from '../core/protocol.ts';
import type { DataSet } from './dataset.ts';
import { Trainer, type EvalSummary } from './run.ts';
import { RankPool } from './rank-pool.ts';
import { abortable, throwIfAborted } from './abort.ts';
import { armsOf, monteCarloSplit, paperRun, summarizePaperFigures, valShare, type PaperArm, type PaperFigures, type PaperRun } from './paper-figures-data.ts';

export interface PaperFiguresParams {
  /** K values of the end-to-end arms. */
  ks: number[];
  /** K values of the frozen-encoder arms (the frozen pretrained encoder when encoder weights are given). */
  frozenKs: number[];
  /** R: repeated runs per arm, one Monte Carlo split each. */
  repeats: number;
  /** Steps per run (0 = the config's epochs). */
  steps: number;
  /** Validation share of each label per split (0 = the data set's own share). */
  valFraction: number;
  /** Steps of Fig. 4a's moving average and of the final-loss window (0 = a quarter of the run, at most one epoch). */
  smooth: number;
  bootstrapRounds: number;
  /** Index of the first repeat (its split): runs of one experiment can be spread over several processes and merged. */
  firstRepeat?: number;
}

export const DEFAULT_PAPER_PARAMS: PaperFiguresParams = { ks: [4, 16, 64], frozenKs: [16], repeats: 5, steps: 0, valFraction: 0, smooth: 0, bootstrapRounds: 1000 };

export interface PaperFiguresOptions {
  cfg: Config;
  data: DataSet;
  /** The base configuration as a lab hash (recorded with the figures). */
  hash: string;
  makeRanks: (n: number) => RankApi[];
  params: PaperFiguresParams;
  /** [P] initial encoder weights of every run (the pretrained encoder); absent: the seed's random init. */
  encoderWeights?: Float32Array;
  /** Cancels: the call in flight is abandoned and every worker is terminated. */
  signal?: AbortSignal;
  onStatus?: (status: string, runsDone: number, runsTotal: number) => void;
  onRun?: (run: PaperRun, runs: PaperRun[]) => void;
}

/** Runs every arm R times and returns the figures' data. */
export async function runPaperFigures(o: PaperFiguresOptions): Promise<PaperFigures> {
  const p = o.params;
  if (!(p.repeats >= 1)) throw new Error(`paper figures: repeats must be at least 1, got ${p.repeats}`);
  const arms = armsOf(p.ks, p.frozenKs);
  if (!arms.length) throw new Error('paper figures: no arm (give K values for end to end or frozen)');
  const valFraction = p.valFraction > 0 ? p.valFraction : valShare(o.data.entries) || 0.25;
  const lesions = new Map(o.data.slides.map((s) => [s.id, s.lesionTiles]));
  const t0 = performance.now();
  const pool = new RankPool(o.makeRanks);
  const onAbort = () => pool.terminate();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const runs: PaperRun[] = [];
  const total = arms.length * p.repeats;
  let stepsPerRun = 0;
  let smooth = p.smooth;
  try {
    const first = p.firstRepeat ?? 0;
    for (let r = first; r < first + p.repeats; r++) {
      const entries = monteCarloSplit(o.data.entries, o.cfg.seed, r, valFraction);
      const split = new Map(entries.map((e) => [e.id, e.split]));
      // Same tile source object: the pooled replicas stay warm across splits.
      const data: DataSet = { ...o.data, entries, slides: o.data.slides.map((s) => (split.has(s.id) ? { ...s, split: split.get(s.id)! } : s)) };
      const valSlides = entries.filter((e) => e.split === 'val').map((e) => e.id);
      for (const arm of arms) {
        throwIfAborted(o.signal);
        o.onStatus?.(`repeat ${r + 1} of ${first + p.repeats}, ${arm.name}: starting`, runs.length, total);
        const inits = pool.stats.inits;
        const run = await runArm(o, pool, data, arm, r, valSlides, lesions, (step, n, loss) => o.onStatus?.(`repeat ${r + 1} of ${first + p.repeats}, ${arm.name}: step ${step} of ${n}, loss ${loss.toFixed(3)}`, runs.length, total), () => pool.stats.inits === inits, smooth);
        stepsPerRun = Math.max(stepsPerRun, run.steps);
        runs.push(run.run);
        if (!smooth) smooth = run.smooth;
        o.onRun?.(run.run, [...runs]);
      }
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    pool.terminate();
  }
  const enc = o.cfg.encoder;
  return summarizePaperFigures(
    {
      hash: o.hash, data: o.data.name, slides: o.data.entries.length, repeats: p.repeats, valFraction, stepsPerRun, ks: p.ks, frozenKs: p.frozenKs,
      smooth: smooth || 1, bootstrapRounds: p.bootstrapRounds, seed: o.cfg.seed,
      encoder: `${enc.kind}${enc.kind.includes('resnet') ? `-${enc.depth}` : ''} width ${enc.width}${enc.pretrained ? ` from ${enc.pretrained}` : ' (random init)'}`,
    },
    arms, runs, performance.now() - t0,
  );
}

async function runArm(
  o: PaperFiguresOptions, pool: RankPool, data: DataSet, arm: PaperArm, repeat: number, valSlides: string[],
  lesions: Map<string, number[] | undefined>, onStep: (step: number, total: number, loss: number) => void, reused: () => boolean, smoothParam: number,
): Promise<{ run: PaperRun; steps: number; smooth: number }> {
  const t0 = performance.now();
  const cfg = parseConfig({ ...o.cfg, tiles: arm.k, frozenEncoder: arm.frozenEncoder });
  const trainer = await Trainer.create({ cfg, data, makeRanks: pool.lease, bootstrapRounds: o.params.bootstrapRounds, signal: o.signal, encoderWeights: o.encoderWeights });
  const reusedRanks = reused();
  try {
    const total = o.params.steps > 0 ? Math.min(o.params.steps, trainer.total) : trainer.total;
    for (let i = 0; i < total; i++) {
      throwIfAborted(o.signal);
      // Validation only after the last step: the figures use the final model.
      const report = await abortable(trainer.engine.trainStep(o.signal), o.signal);
      trainer.history.steps.push(report);
      onStep(i + 1, total, report.loss);
    }
    const last: EvalSummary = await abortable(trainer.evaluate(o.signal), o.signal);
    const losses = trainer.history.steps.map((s) => s.loss);
    // Default window: a quarter of the run, at most one epoch.
    const smooth = smoothParam || Math.max(1, Math.min(trainer.engine.sampler.stepsPerEpoch, Math.round(losses.length / 4)));
    const run = paperRun(arm, repeat, valSlides, losses, smooth, last.slides, (id) => lesions.get(id), cfg.seed + repeat, {
      wallMs: performance.now() - t0, reusedRanks, bootstrapRounds: o.params.bootstrapRounds,
    });
    return { run, steps: losses.length, smooth };
  } finally {
    await trainer.dispose();
  }
}

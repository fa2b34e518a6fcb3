// One training run: ranks, engine, the step loop's bookkeeping (history, progress, ETA, tiles/s)
// and the per-epoch validation (AUC, ROC with a bootstrapped band). The session (pause, resume,
// checkpoints) and the experiment runners both drive this.
import type { Config } from '../core/config.ts';
import { Engine, type EngineOptions } from '../core/engine.ts';
import type { BackendInfo, RankApi, RankInfo } from '../core/protocol.ts';
import type { EvalReport, PhaseEvent, StepReport } from '../core/report.ts';
import { attentionScore, rocBootstrap, rocCurve, type AttentionScore, type RocPoint } from '../core/metrics.ts';
import type { DataSet } from './dataset.ts';
import { guardRank, isRankFault, terminateAll, type ControlledRank } from './guard.ts';
import { MAX_RECOVERIES_PER_STEP, restoreRanks, type FaultNotice } from './recovery.ts';
import { abortable, throwIfAborted } from './abort.ts';
import { mean, median } from '../core/stats.ts';

export interface EvalSummary extends EvalReport {
  /** Mean training loss over the epoch that just ended (NaN if none). */
  trainLoss: number;
  roc: RocPoint[];
  band: ReturnType<typeof rocBootstrap>;
  /** How well attention finds the lesions (positive validation slides with ground truth; slides 0 when there is none). */
  attention: AttentionScore;
}

export interface Progress {
  /** Steps done and total steps of the run. */
  step: number;
  total: number;
  epoch: number;
  epochs: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  /** Mean wall time of recent steps, estimated time left (ms; NaN before the first step). */
  msPerStep: number;
  etaMs: number;
  /** Tiles encoded per second over recent steps (K / step wall time). */
  tilesPerSec: number;
}

export interface RunHistory {
  steps: StepReport[];
  evals: EvalSummary[];
}

export interface TrainerOptions {
  cfg: Config;
  data: DataSet;
  makeRanks: (n: number) => RankApi[];
  /** Per-call rank timeout (ms; default RANK_TIMEOUT_MS). */
  rankTimeoutMs?: number;
  onPhase?: (e: PhaseEvent) => void | Promise<void>;
  /** Bootstrap rounds of the ROC band. */
  bootstrapRounds?: number;
  /** Aborts the start: the ranks are terminated and create() rejects with an AbortError. */
  signal?: AbortSignal;
  /** [P] initial encoder weights (a pretrained encoder); absent: the seed's random init. */
  encoderWeights?: Float32Array;
  /** A rank crashed or lost its device and was restored (src/lab/recovery.ts); the step was retried. */
  onFault?: (notice: FaultNotice) => void;
  /** How the ranks' encoder gradients are summed (EngineOptions.reduction; default 'star'). */
  reduction?: EngineOptions['reduction'];
}

/** lesions: slide id -> tile indices with a lesion (planted, or from an annotation file), where known. */
export function summarizeEval(report: EvalReport, trainLosses: number[], seed: number, rounds = 200, lesions?: ReadonlyMap<string, readonly number[]>): EvalSummary {
  const scores = report.slides.map((s) => s.prob);
  const labels = report.slides.map((s) => s.label);
  const attention = attentionScore(report.slides.map((s) => ({ label: s.label, attention: s.attention, lesionTiles: lesions?.get(s.slideId) })));
  return { ...report, trainLoss: mean(trainLosses), roc: rocCurve(scores, labels), band: rocBootstrap(scores, labels, rounds, seed), attention };
}

/** Slide id -> lesion tile indices of the slides that have ground truth. */
export function lesionMap(data: DataSet): Map<string, number[]> {
  return new Map(data.slides.filter((s) => s.lesionTiles).map((s) => [s.id, s.lesionTiles!]));
}

export function progressOf(history: RunHistory, total: number, stepsPerEpoch: number, epochs: number, done: number): Progress {
  // Recent steps, by their median: the first steps of a run (shader compilation) would skew a mean.
  const recent = history.steps.slice(-10);
  const msPerStep = median(recent.map((s) => s.wallMs));
  const tilesPerStep = median(recent.map((s) => s.k));
  const evalMs = history.evals.length ? history.evals[history.evals.length - 1].wallMs : msPerStep * 2;
  const epoch = Math.min(epochs - 1, Math.floor(done / stepsPerEpoch));
  const evalsLeft = Math.max(0, epochs - history.evals.length);
  return {
    step: done,
    total,
    epoch,
    epochs,
    stepInEpoch: done - epoch * stepsPerEpoch,
    stepsPerEpoch,
    msPerStep,
    etaMs: Number.isFinite(msPerStep) ? msPerStep * (total - done) + evalMs * evalsLeft : NaN,
    tilesPerSec: msPerStep > 0 ? (tilesPerStep * 1000) / msPerStep : NaN,
  };
}

export class Trainer {
  readonly history: RunHistory = { steps: [], evals: [] };
  rankInfo: RankInfo[] = [];
  /** The rank faults this run survived. */
  readonly faults: FaultNotice[] = [];

  private constructor(readonly engine: Engine, readonly ranks: ControlledRank[], private readonly options: TrainerOptions) {}

  /** Starts N ranks and the engine. On failure every rank is terminated and the error says where. */
  static async create(options: TrainerOptions): Promise<Trainer> {
    const { cfg, data } = options;
    if (data.entries.length === 0) throw new Error('no usable slide in the data set');
    if (!data.entries.some((e) => e.split === 'train')) throw new Error('the data set has no training slide');
    throwIfAborted(options.signal);
    const raw = options.makeRanks(cfg.ranks);
    const ranks = raw.map((r, i) => guardRank(r, i, { timeoutMs: options.rankTimeoutMs }));
    try {
      const engine = new Engine(cfg, data.entries, ranks, { onPhase: options.onPhase, encoderWeights: options.encoderWeights, reduction: options.reduction });
      const trainer = new Trainer(engine, ranks, options);
      // Starting a worker and its WebGPU device can take a minute: a stop must not wait for it.
      trainer.rankInfo = await abortable(engine.init(data.tileSpec), options.signal);
      return trainer;
    } catch (e) {
      terminateAll(ranks);
      throw e;
    }
  }

  get cfg(): Config {
    return this.options.cfg;
  }
  get total(): number {
    return this.engine.totalSteps;
  }
  get done(): boolean {
    return this.engine.step >= this.total;
  }

  progress(): Progress {
    return progressOf(this.history, this.total, this.engine.sampler.stepsPerEpoch, this.cfg.epochs, this.engine.step);
  }

  /** One training step; returns the report and, at an epoch's end (or `forceEval`), the validation. */
  async step(signal?: AbortSignal, forceEval = false, onEvalSlide?: (done: number, total: number) => void): Promise<{ report: StepReport; eval?: EvalSummary }> {
    const report = await this.surviving(this.engine.step, () => this.engine.trainStep(signal), signal);
    // A rank that faulted after the others had applied the step's update: restore it now.
    const late = this.engine.takeLostRanks();
    if (late.length) await this.recover(report.step, late.map((f) => f.rank), late[0], 1, false);
    this.history.steps.push(report);
    const spe = this.engine.sampler.stepsPerEpoch;
    const every = this.cfg.evalEvery;
    if (forceEval || (report.step + 1) % spe === 0 || (every > 0 && (report.step + 1) % every === 0)) return { report, eval: await this.evaluate(signal, onEvalSlide) };
    return { report };
  }

  /** Validation on the val split: AUC, ROC, bootstrap band; recorded in the history. */
  async evaluate(signal?: AbortSignal, onSlide?: (done: number, total: number) => void): Promise<EvalSummary> {
    const report = await this.surviving('eval', () => this.engine.evaluate(signal, onSlide), signal);
    const spe = this.engine.sampler.stepsPerEpoch;
    const epochStart = Math.floor((this.engine.step - 1) / spe) * spe;
    const losses = this.history.steps.filter((s) => s.step >= epochStart && s.step < this.engine.step).map((s) => s.loss);
    const summary = summarizeEval(report, losses, this.cfg.seed, this.options.bootstrapRounds, lesionMap(this.options.data));
    this.history.evals = this.history.evals.filter((e) => e.step !== summary.step);
    this.history.evals.push(summary);
    return summary;
  }

  /** Runs `work`; a rank fault abandons it, restores the rank from a healthy replica and runs it again. */
  private async surviving<T>(step: number | 'eval', work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (e) {
        if (!isRankFault(e) || signal?.aborted || attempt > MAX_RECOVERIES_PER_STEP) throw e;
        await this.recover(step, [e.rank], { fault: e.fault, call: e.call, reason: e.reason, detectedAt: e.detectedAt }, attempt, true);
      }
    }
  }

  private async recover(step: number | 'eval', lost: number[], seen: { fault: FaultNotice['kind']; call: string; reason: string; detectedAt: number }, attempt: number, retried: boolean): Promise<void> {
    const { donor, restarted } = await restoreRanks(this.ranks, lost, this.engine.sharedReduce);
    const notice: FaultNotice = { kind: seen.fault, rank: lost[0], call: seen.call, reason: seen.reason, step, restarted, donor, detectedAt: seen.detectedAt, restoredAt: performance.now(), attempt, retried };
    this.faults.push(notice);
    this.options.onFault?.(notice);
  }

  /** Ends the run: disposes the engine (with a deadline) and terminates the workers. */
  async dispose(): Promise<void> {
    try {
      await Promise.race([this.engine.dispose(), new Promise((r) => setTimeout(r, 5000))]);
    } catch {
      // a dead rank cannot dispose; terminating it below frees it
    }
    terminateAll(this.ranks);
  }

  /** Stops the workers at once (abort: the step in flight is lost). */
  terminate(): void {
    terminateAll(this.ranks);
  }
}

export type { BackendInfo };

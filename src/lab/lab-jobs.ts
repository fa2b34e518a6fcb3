// The session's one-off jobs beside training: the gradient-equivalence check (N ranks against
// the single-graph reference), the experiments (K sweep, frozen vs end to end) and the paper
// figures. Each takes an AbortSignal and reports rows as they come; LabJobs runs one at a time
// with the session 'busy', and keeps each job's last results for the panels.
import type { Config } from '../core/config.ts';
import { runEquivalence, type EquivalenceRow } from '../core/equivalence.ts';
import type { RankApi } from '../core/protocol.ts';
import type { TileSource, TileSourceSpec } from '../core/tiles.ts';
import type { DataSet } from './dataset.ts';
import { runFrozenVsEndToEnd, runKSweep, type ExperimentRow } from './experiments.ts';
import { terminateAll } from './guard.ts';
import type { LabOptions } from './presets.ts';
import type { ExperimentKind, LabEvents, LabState } from './session-types.ts';
import { DEFAULT_PAPER_PARAMS, runPaperFigures, type PaperFiguresParams } from './paper-figures.ts';
import type { PaperFigures, PaperRun } from './paper-figures-data.ts';

export interface JobContext {
  cfg: Config;
  lab: LabOptions;
  data: DataSet;
  /** N guarded ranks (each call times out and names its rank). */
  makeRanks: (n: number) => RankApi[];
  signal: AbortSignal;
  /** [P] initial encoder weights (a pretrained encoder); absent: the seed's random init. */
  encoderWeights?: Float32Array;
}

/** N ranks against the single-graph reference, per step; `onRows` sees the rows so far. */
export async function equivalenceJob(
  ctx: JobContext,
  steps: number,
  referenceTiles: (spec: TileSourceSpec) => TileSource,
  onRows: (update: LabEvents['equivalence']) => void,
): Promise<EquivalenceRow[]> {
  let rows: EquivalenceRow[] = [];
  onRows({ rows, running: true });
  const ranks = ctx.makeRanks(ctx.cfg.ranks);
  const stop = () => terminateAll(ranks);
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    return await runEquivalence({
      cfg: ctx.cfg, slides: ctx.data.entries, ranks, tileSpec: ctx.data.tileSpec,
      referenceTiles: referenceTiles(ctx.data.tileSpec), steps, signal: ctx.signal,
      engineOptions: { encoderWeights: ctx.encoderWeights },
      onRow: (row) => {
        rows = [...rows, row];
        onRows({ rows, running: true });
      },
    });
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    terminateAll(ranks);
    onRows({ rows, running: false });
  }
}

export const EXPERIMENT_TITLES: Record<ExperimentKind, string> = { 'k-sweep': 'K sweep', 'frozen-vs-e2e': 'frozen vs end to end' };

/** One experiment; its runs share one set of rank workers. `onUpdate` sees rows and a status line. */
export async function experimentJob(ctx: JobContext, kind: ExperimentKind, onUpdate: (update: LabEvents['experiment']) => void): Promise<ExperimentRow[]> {
  let rows: ExperimentRow[] = [];
  let status = 'starting the ranks';
  const emit = (running: boolean) => onUpdate({ kind, rows, running, status });
  emit(true);
  const o = {
    cfg: ctx.cfg, data: ctx.data, makeRanks: ctx.makeRanks, maxSteps: ctx.lab.expSteps, signal: ctx.signal, encoderWeights: ctx.encoderWeights,
    onRunStart: (v: string, i: number, n: number) => { status = `run ${i + 1} of ${n}: ${v}`; emit(true); },
    onStep: (v: string, s: number, total: number, loss: number) => { status = `${v}: step ${s} of ${total}, loss ${loss.toFixed(3)}`; emit(true); },
    onRow: (row: ExperimentRow) => { rows = [...rows, row]; emit(true); },
  };
  let finished = false;
  try {
    const out = kind === 'k-sweep' ? await runKSweep(o, ctx.lab.sweep) : await runFrozenVsEndToEnd(o);
    finished = true;
    return out;
  } finally {
    status = ctx.signal.aborted ? 'cancelled' : finished ? 'finished' : 'failed';
    emit(false);
  }
}

/** Progress of the paper-figures job: a status line, runs done, the runs so far. */
export interface PaperFiguresUpdate {
  running: boolean;
  status: string;
  done: number;
  total: number;
  runs: PaperRun[];
}

/** The paper-figures experiment (R runs per arm on one pool of warm ranks); `onUpdate` sees its progress. */
export async function paperFiguresJob(ctx: JobContext, params: PaperFiguresParams, hash: string, onUpdate: (u: PaperFiguresUpdate) => void): Promise<PaperFigures> {
  const u: PaperFiguresUpdate = { running: true, status: 'starting the ranks', done: 0, total: (params.ks.length + params.frozenKs.length) * params.repeats, runs: [] };
  onUpdate({ ...u });
  let finished = false;
  try {
    const out = await runPaperFigures({
      cfg: ctx.cfg, data: ctx.data, hash, makeRanks: ctx.makeRanks, params, encoderWeights: ctx.encoderWeights, signal: ctx.signal,
      onStatus: (status, done, total) => {
        Object.assign(u, { status, done, total });
        onUpdate({ ...u });
      },
      onRun: (_run, runs) => {
        Object.assign(u, { runs, done: runs.length });
        onUpdate({ ...u });
      },
    });
    finished = true;
    return out;
  } finally {
    u.status = ctx.signal.aborted ? 'cancelled' : finished ? 'finished' : 'failed';
    u.running = false;
    onUpdate({ ...u });
  }
}

/** What the jobs need from the session. */
export interface JobHost {
  readonly running: boolean;
  readonly data: DataSet | null;
  readonly config: Config;
  readonly options: LabOptions;
  readonly hash: string;
  emit<K extends keyof LabEvents>(kind: K, value: LabEvents[K]): void;
  setState(s: LabState): void;
  fail(e: unknown, where: string): void;
  clearError(): void;
  /** Frees the live run's ranks, sets up the main context's backend; returns the [P] initial encoder weights. */
  prepare(signal: AbortSignal): Promise<Float32Array | undefined>;
  /** N guarded ranks. */
  makeRanks(n: number): RankApi[];
  referenceTiles: (spec: TileSourceSpec) => TileSource;
}

/** Runs the session's jobs one at a time ('busy'), cancellable, and keeps their last results. */
export class LabJobs {
  equivalenceRows: EquivalenceRow[] = [];
  experimentRows: ExperimentRow[] = [];
  /** The last paper-figures experiment (null before one finished) and its progress. */
  paperFigures: PaperFigures | null = null;
  paperFiguresProgress: PaperFiguresUpdate | null = null;
  private abort: AbortController | null = null;

  constructor(private readonly host: JobHost) {}

  /** Runs one job with the session 'busy'; null when it failed (lastError says why) or was cancelled. */
  private async busy<T>(what: string, job: (ctx: JobContext) => Promise<T>): Promise<T | null> {
    const h = this.host;
    if (h.running || !h.data) {
      h.fail(new Error(h.running ? 'stop the training run first' : 'load a data set first'), what);
      return null;
    }
    const data = h.data;
    h.clearError();
    const abort = (this.abort = new AbortController());
    h.setState('busy');
    try {
      const encoderWeights = await h.prepare(abort.signal);
      return await job({ cfg: h.config, lab: h.options, data, makeRanks: (n) => h.makeRanks(n), signal: abort.signal, encoderWeights });
    } catch (e) {
      if (!abort.signal.aborted) h.fail(e, what);
      return null;
    } finally {
      this.abort = null;
      h.setState('ready');
    }
  }

  /** Cancels the running job. */
  cancel(): void {
    this.abort?.abort(new DOMException('cancelled', 'AbortError'));
  }

  equivalence(steps: number): Promise<EquivalenceRow[] | null> {
    return this.busy('equivalence', (ctx) =>
      equivalenceJob(ctx, steps, this.host.referenceTiles, (u) => {
        this.equivalenceRows = u.rows;
        this.host.emit('equivalence', u);
      }),
    );
  }

  experiment(kind: ExperimentKind): Promise<ExperimentRow[] | null> {
    return this.busy(EXPERIMENT_TITLES[kind], (ctx) =>
      experimentJob(ctx, kind, (u) => {
        this.experimentRows = u.rows;
        this.host.emit('experiment', u);
      }),
    );
  }

  async paper(params: Partial<PaperFiguresParams>, onUpdate?: (u: PaperFiguresUpdate) => void): Promise<PaperFigures | null> {
    const p = { ...DEFAULT_PAPER_PARAMS, ...params };
    const out = await this.busy('paper figures', (ctx) =>
      paperFiguresJob(ctx, p, this.host.hash, (u) => {
        this.paperFiguresProgress = u;
        onUpdate?.(u);
      }),
    );
    if (out) this.paperFigures = out;
    return out;
  }
}

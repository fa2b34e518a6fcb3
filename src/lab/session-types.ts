// The LabSession's vocabulary: its states, its typed events (what the UI, the headless runner and
// the tests listen to), what it needs from its surroundings (SessionDeps), and errors in words.
import { ConfigError, type Config } from '../core/config.ts';
import type { EquivalenceRow } from '../core/equivalence.ts';
import type { BackendInfo, RankApi, RankInfo } from '../core/protocol.ts';
import type { PhaseEvent, StepReport } from '../core/report.ts';
import type { TileSource, TileSourceSpec } from '../core/tiles.ts';
import type { CheckpointStore } from './checkpoints.ts';
import type { DataSet } from './dataset.ts';
import type { ExperimentRow } from './experiments.ts';
import { RankError } from './guard.ts';
import type { LabOptions, MainBackend } from './presets.ts';
import type { EvalSummary, Progress, RunHistory } from './run.ts';
import type { PretrainedEncoder } from '../core/pretrained.ts';
import type { FaultNotice } from './recovery.ts';

export type LabState = 'empty' | 'loading' | 'ready' | 'starting' | 'running' | 'pausing' | 'paused' | 'stopping' | 'stopped' | 'done' | 'error' | 'busy';

/** States in which the session is doing something (settings and data are locked). */
export const ACTIVE_STATES: readonly LabState[] = ['starting', 'running', 'pausing', 'stopping', 'busy', 'loading'];

export interface LabError {
  /** Where it happened: "rank 1, encode", "slide demo-004", "config: tiles", "data set", "equivalence"... */
  where: string;
  message: string;
}

/** The main context's tfjs backend (it runs the aggregator), with the setting that chose it. */
export interface MainBackendInfo extends BackendInfo {
  /** The lab setting `mainBackend`. */
  choice: MainBackend;
  /** Why this backend, in words ("software WebGPU adapter: ..."). */
  why: string;
}

export type ExperimentKind = 'k-sweep' | 'frozen-vs-e2e';

export interface LabEvents extends Record<string, unknown> {
  state: LabState;
  config: { config: Config; lab: LabOptions; hash: string };
  data: DataSet | null;
  loading: { done: number; total: number; name: string };
  ranks: { main: MainBackendInfo | null; ranks: RankInfo[] };
  step: StepReport;
  eval: EvalSummary;
  evalProgress: { done: number; total: number };
  progress: Progress;
  /** A phase started or ended; `waiting`: teaching mode holds the step here until continuePhase(). */
  phase: PhaseEvent & { waiting: boolean };
  checkpoint: { step: number; savedAt: number };
  error: LabError | null;
  equivalence: { rows: EquivalenceRow[]; running: boolean };
  experiment: { kind: ExperimentKind; rows: ExperimentRow[]; running: boolean; status: string };
  log: string;
  /** A new run started: its (empty or restored) history. */
  run: RunHistory;
  /** A pretrained encoder was loaded (null: cleared). */
  pretrained: PretrainedEncoder | null;
  /** A rank crashed or lost its WebGPU device, was restored from a healthy replica, and training goes on (src/lab/recovery.ts). */
  fault: FaultNotice & { text: string };
}

export interface SessionDeps {
  /** N fresh ranks (web workers in the browser, in-process in Node tests). */
  makeRanks: (n: number) => RankApi[];
  /**
   * Sets up the main context's tfjs backend for the aggregator: `main` is the lab setting
   * ('auto' | 'webgpu' | 'cpu'), `ranks` the ranks' backend preference from the config.
   */
  setupMain: (ranks: Config['backend'], main: MainBackend) => Promise<BackendInfo & Partial<Pick<MainBackendInfo, 'why'>>>;
  store: CheckpointStore;
  /** A tile source in the main context (the equivalence check's single-graph reference reads tiles). */
  referenceTiles: (spec: TileSourceSpec) => TileSource;
  fetcher?: typeof fetch;
  demoUrl?: string;
  /** Where the built-in pretrained encoders are served (default '/models/'). */
  modelsUrl?: string;
  /** Save a checkpoint every this many steps (and at every epoch end and pause). */
  checkpointEvery?: number;
  /** Per-call rank timeout (ms; default RANK_TIMEOUT_MS in guard.ts). */
  rankTimeoutMs?: number;
}

export function describeError(e: unknown, fallbackWhere: string): LabError {
  if (e instanceof RankError) return { where: `rank ${e.rank}, ${e.call}`, message: e.reason };
  if (e instanceof ConfigError) return { where: `config: ${e.problems.map((p) => p.field).join(', ')}`, message: e.message };
  const message = e instanceof Error ? e.message : String(e);
  return { where: fallbackWhere, message };
}

// React's view of a LabSession: one snapshot object, replaced on every session event, read with
// useSyncExternalStore. The session stays the single source of truth.
import { createContext, useContext, useSyncExternalStore } from 'react';
import type { Config } from '../core/config.ts';
import type { EquivalenceRow } from '../core/equivalence.ts';
import type { RankInfo } from '../core/protocol.ts';
import type { PhaseEvent, StepReport } from '../core/report.ts';
import type { DataSet } from '../lab/dataset.ts';
import type { ExperimentRow } from '../lab/experiments.ts';
import type { LabOptions } from '../lab/presets.ts';
import type { PretrainedEncoder } from '../core/pretrained.ts';
import type { EvalSummary, Progress } from '../lab/run.ts';
import type { ExperimentKind, LabError, LabSession, LabState, MainBackendInfo } from '../lab/session.ts';

export interface LabSnapshot {
  state: LabState;
  config: Config;
  lab: LabOptions;
  hash: string;
  data: DataSet | null;
  loading: { done: number; total: number; name: string } | null;
  /** The main context's backend (the aggregator's), once a run or job has set it up. */
  main: MainBackendInfo | null;
  ranks: RankInfo[];
  steps: StepReport[];
  evals: EvalSummary[];
  evalProgress: { done: number; total: number } | null;
  progress: Progress | null;
  /** Phase events of the step in flight (for the live timeline and teaching mode). */
  phases: (PhaseEvent & { waiting: boolean })[];
  checkpoint: { step: number; savedAt: number } | null;
  error: LabError | null;
  equivalence: { rows: EquivalenceRow[]; running: boolean };
  experiment: { kind: ExperimentKind; rows: ExperimentRow[]; running: boolean; status: string } | null;
  experiments: Partial<Record<ExperimentKind, ExperimentRow[]>>;
  teaching: boolean;
  log: string[];
  /** The last rank fault the run survived, in words (null: none, or dismissed). */
  notice: string | null;
  /** The pretrained encoder loaded in this page (null: none). */
  pretrained: PretrainedEncoder | null;
}

export class LabStore {
  private snap: LabSnapshot;
  private subs = new Set<() => void>();

  constructor(readonly session: LabSession) {
    const s = session;
    this.snap = {
      state: s.state, config: s.config, lab: s.options, hash: s.hash, data: s.data, loading: null, main: s.mainBackend, ranks: s.rankInfo,
      steps: [...s.history.steps], evals: [...s.history.evals], evalProgress: null, progress: null, phases: [], checkpoint: s.lastCheckpoint,
      error: s.lastError, equivalence: { rows: s.equivalenceRows, running: false }, experiment: null, experiments: {}, teaching: s.teaching, log: [], notice: null,
      pretrained: s.pretrained.loaded,
    };
    s.on('state', (state) => this.set({ state, teaching: s.teaching }));
    s.on('config', (c) => this.set({ config: c.config, lab: c.lab, hash: c.hash }));
    s.on('data', (data) => this.set({ data, loading: null }));
    s.on('loading', (loading) => this.set({ loading }));
    s.on('ranks', (r) => this.set({ main: r.main, ranks: r.ranks }));
    s.on('run', () => this.set({ steps: [], evals: [], progress: null, phases: [] }));
    s.on('step', (step) => this.set({ steps: [...this.snap.steps, step], phases: [] }));
    s.on('eval', (ev) => this.set({ evals: [...this.snap.evals.filter((e) => e.step !== ev.step), ev], evalProgress: null }));
    s.on('evalProgress', (evalProgress) => this.set({ evalProgress }));
    s.on('progress', (progress) => this.set({ progress }));
    s.on('phase', (p) => this.set({ phases: [...this.snap.phases.filter((q) => q.step === p.step && !(q.phase === p.phase && q.at === p.at)), p] }));
    s.on('checkpoint', (checkpoint) => this.set({ checkpoint }));
    s.on('error', (error) => this.set({ error }));
    s.on('equivalence', (equivalence) => this.set({ equivalence }));
    s.on('experiment', (experiment) => this.set({ experiment, experiments: { ...this.snap.experiments, [experiment.kind]: experiment.rows } }));
    s.on('pretrained', (pretrained) => this.set({ pretrained }));
    s.on('log', (line) => this.set({ log: [...this.snap.log.slice(-50), line] }));
    s.on('fault', (f) => this.set({ notice: f.text }));
  }

  private set(patch: Partial<LabSnapshot>): void {
    this.snap = { ...this.snap, ...patch };
    for (const fn of this.subs) fn();
  }

  /** For UI-only flags kept beside the session's (e.g. teaching). */
  refresh(): void {
    this.set({ teaching: this.session.teaching });
  }

  dismissNotice(): void {
    this.set({ notice: null });
  }

  subscribe = (fn: () => void): (() => void) => {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  };

  get = (): LabSnapshot => this.snap;
}

export const LabContext = createContext<LabStore | null>(null);

export function useLab(): { lab: LabSession; snap: LabSnapshot; store: LabStore } {
  const store = useContext(LabContext);
  if (!store) throw new Error('useLab outside <LabContext.Provider>');
  const snap = useSyncExternalStore(store.subscribe, store.get);
  return { lab: store.session, snap, store };
}

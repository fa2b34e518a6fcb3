// LabSession: the lab's controller, framework-free. It owns the data set, the configuration and
// one training run at a time (start, pause, resume, stop, single step, teaching pauses after
// each phase), saves checkpoints as training goes and resumes from them, and runs the
// equivalence check and the experiments. The UI, the headless command and tests drive it and
// listen to its typed events.
import { ConfigError, parseConfig, type Config } from '../core/config.ts';
import { runEquivalence, type EquivalenceRow } from '../core/equivalence.ts';
import type { BackendInfo, RankApi, RankInfo } from '../core/protocol.ts';
import type { PhaseEvent, StepReport } from '../core/report.ts';
import type { TileSource, TileSourceSpec } from '../core/tiles.ts';
import { compactSteps, type Checkpoint, type CheckpointStore } from './checkpoints.ts';
import { loadDemo, loadSynthetic, type DataSet } from './dataset.ts';
import { Emitter } from './emitter.ts';
import { runFrozenVsEndToEnd, runKSweep, type ExperimentRow } from './experiments.ts';
import { exportWeights, importWeights, metricsCsv, metricsJson, type MetricsJson, type WeightsArtifacts } from './export.ts';
import { loadDroppedFiles, type DroppedFile } from './files.ts';
import { guardRank, RankError, terminateAll } from './guard.ts';
import { DEFAULT_LAB, labHash, parseLabHash, type LabOptions } from './presets.ts';
import { Trainer, type EvalSummary, type Progress, type RunHistory } from './run.ts';
import { encoderSpecs } from '../core/models/encoder.ts';

export type LabState = 'empty' | 'loading' | 'ready' | 'starting' | 'running' | 'pausing' | 'paused' | 'stopping' | 'stopped' | 'done' | 'error' | 'busy';

export interface LabError {
  /** Where it happened: "rank 1, encode", "slide demo-004", "config: tiles", "data set", "equivalence"... */
  where: string;
  message: string;
}

export interface LabEvents extends Record<string, unknown> {
  state: LabState;
  config: { config: Config; lab: LabOptions; hash: string };
  data: DataSet | null;
  loading: { done: number; total: number; name: string };
  ranks: { main: BackendInfo | null; ranks: RankInfo[] };
  step: StepReport;
  eval: EvalSummary;
  evalProgress: { done: number; total: number };
  progress: Progress;
  phase: PhaseEvent & { waiting: boolean };
  checkpoint: { step: number; savedAt: number };
  error: LabError | null;
  equivalence: { rows: EquivalenceRow[]; running: boolean };
  experiment: { kind: 'k-sweep' | 'frozen-vs-e2e'; rows: ExperimentRow[]; running: boolean; status: string };
  log: string;
  /** A new run started: its (empty or restored) history. */
  run: RunHistory;
}

export interface SessionDeps {
  /** N fresh ranks (web workers in the browser, in-process in Node tests). */
  makeRanks: (n: number) => RankApi[];
  /** Sets up the main context's tfjs backend for the aggregator. */
  setupMain: (backend: Config['backend']) => Promise<BackendInfo>;
  store: CheckpointStore;
  /** A tile source in the main context (the equivalence check's single-graph reference reads tiles). */
  referenceTiles: (spec: TileSourceSpec) => TileSource;
  fetcher?: typeof fetch;
  demoUrl?: string;
  /** Save a checkpoint every this many steps (and at every epoch end and pause). */
  checkpointEvery?: number;
  rankTimeoutMs?: number;
}

function describeError(e: unknown, fallbackWhere: string): LabError {
  if (e instanceof RankError) return { where: `rank ${e.rank}, ${e.call}`, message: e.reason };
  if (e instanceof ConfigError) return { where: `config: ${e.problems.map((p) => p.field).join(', ')}`, message: e.message };
  const message = e instanceof Error ? e.message : String(e);
  return { where: fallbackWhere, message };
}

const isAbort = (e: unknown) => (e as { name?: string })?.name === 'AbortError' || (e instanceof RankError && /abort/i.test(e.reason));

export class LabSession extends Emitter<LabEvents> {
  config: Config;
  lab: LabOptions;
  preset: string | null = null;
  state: LabState = 'empty';
  data: DataSet | null = null;
  main: BackendInfo | null = null;
  rankInfo: RankInfo[] = [];
  trainer: Trainer | null = null;
  history: RunHistory = { steps: [], evals: [] };
  lastError: LabError | null = null;
  lastCheckpoint: { step: number; savedAt: number } | null = null;
  equivalenceRows: EquivalenceRow[] = [];
  experimentRows: ExperimentRow[] = [];
  /** Teaching mode: pause after each phase until continuePhase(). */
  teaching = false;

  private abort: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private pauseRequested = false;
  private budget = Infinity;
  private wake: (() => void) | null = null;
  private phaseWake: (() => void) | null = null;
  private busyAbort: AbortController | null = null;

  constructor(private readonly deps: SessionDeps, hash = '') {
    super();
    let settings = { config: parseConfig({}), lab: { ...DEFAULT_LAB }, preset: null as string | null };
    try {
      settings = parseLabHash(hash);
    } catch (e) {
      this.lastError = describeError(e, 'link');
    }
    this.config = settings.config;
    this.lab = settings.lab;
    this.preset = settings.preset;
  }

  get hash(): string {
    return labHash({ config: this.config, lab: this.lab });
  }

  private setState(s: LabState): void {
    this.state = s;
    this.emit('state', s);
  }

  private fail(e: unknown, where: string): void {
    this.lastError = describeError(e, where);
    this.emit('error', this.lastError);
  }

  clearError(): void {
    this.lastError = null;
    this.emit('error', null);
  }

  get running(): boolean {
    return ['starting', 'running', 'pausing', 'stopping', 'busy', 'loading'].includes(this.state);
  }

  /** Applies a lab hash (link, preset); refuses while a run is active. Throws ConfigError. */
  applyHash(hash: string): void {
    const s = parseLabHash(hash);
    this.setSettings(s.config, s.lab, s.preset);
  }

  setSettings(config: Config, lab: LabOptions = this.lab, preset: string | null = null): void {
    if (this.running) throw new Error('stop the run before changing the configuration');
    const cfg = parseConfig(config);
    const changed = JSON.stringify(cfg) !== JSON.stringify(this.config);
    this.config = cfg;
    this.lab = lab;
    this.preset = preset;
    if (changed) void this.discardRun();
    this.emit('config', { config: this.config, lab: this.lab, hash: this.hash });
  }

  // ---- data ----------------------------------------------------------------------------------

  private async setData(load: () => Promise<DataSet>): Promise<DataSet | null> {
    if (this.running) throw new Error('stop the run before loading other data');
    await this.discardRun();
    this.setState('loading');
    try {
      const data = await load();
      this.data = data;
      this.emit('data', data);
      this.setState('ready');
      if (data.entries.length === 0) this.fail(new Error('no usable slide: see the errors in the slide list'), 'data set');
      return data;
    } catch (e) {
      this.fail(e, 'data set');
      this.setState(this.data ? 'ready' : 'empty');
      return null;
    }
  }

  loadDefaultData(): Promise<DataSet | null> {
    return this.lab.data === 'synthetic' ? this.loadSynthetic() : this.loadDemo();
  }

  loadDemo(): Promise<DataSet | null> {
    return this.setData(() => loadDemo(this.deps.demoUrl ?? '/demo/demo.json', this.lab.subset, this.deps.fetcher ?? fetch.bind(globalThis)));
  }

  loadSynthetic(count = 16): Promise<DataSet | null> {
    return this.setData(async () => loadSynthetic(count, this.config.seed, 32, this.lab.subset));
  }

  loadFiles(files: DroppedFile[]): Promise<DataSet | null> {
    return this.setData(() => loadDroppedFiles(files, { onProgress: (done, total, name) => this.emit('loading', { done, total, name }) }));
  }

  // ---- training --------------------------------------------------------------------------------

  private async ensureMain(): Promise<void> {
    if (this.main && (this.config.backend === 'auto' || this.main.backend === this.config.backend)) return;
    this.main = await this.deps.setupMain(this.config.backend);
  }

  private async ensureTrainer(): Promise<Trainer> {
    if (this.trainer) return this.trainer;
    if (!this.data) throw new Error('load a data set first');
    await this.discardRun();
    await this.ensureMain();
    const trainer = await Trainer.create({
      cfg: this.config,
      data: this.data,
      makeRanks: this.deps.makeRanks,
      rankTimeoutMs: this.deps.rankTimeoutMs,
      onPhase: (e) => this.onPhase(e),
    });
    this.trainer = trainer;
    this.history = trainer.history;
    this.rankInfo = trainer.rankInfo;
    this.emit('run', this.history);
    this.emit('ranks', { main: this.main, ranks: this.rankInfo });
    this.emit('progress', trainer.progress());
    return trainer;
  }

  private waitingPhase: PhaseEvent | null = null;

  private async onPhase(e: PhaseEvent): Promise<void> {
    const waiting = this.teaching && e.at === 'end' && !this.abort?.signal.aborted;
    this.emit('phase', { ...e, waiting });
    if (waiting) {
      this.waitingPhase = e;
      await new Promise<void>((resolve) => (this.phaseWake = resolve));
    }
  }

  /** Teaching mode: go on to the next phase. */
  continuePhase(): void {
    const w = this.phaseWake;
    const e = this.waitingPhase;
    this.phaseWake = null;
    this.waitingPhase = null;
    if (w && e) this.emit('phase', { ...e, waiting: false }); // the phase is no longer waiting
    w?.();
  }

  setTeaching(on: boolean): void {
    this.teaching = on;
    if (!on) this.continuePhase();
  }

  /** Starts (or continues) training until done, pause or stop. */
  async start(): Promise<void> {
    if (this.loop) return this.resume();
    if (this.trainer?.done) await this.discardRun(); // a finished run: start a fresh one
    this.pauseRequested = false;
    this.budget = Infinity;
    this.run();
  }

  /** Runs exactly one step, then pauses. */
  async step(): Promise<void> {
    this.budget = 1;
    this.pauseRequested = false;
    if (this.loop) return this.wakeLoop();
    if (this.trainer?.done) await this.discardRun();
    this.run();
  }

  pause(): void {
    if (!this.loop) return;
    this.pauseRequested = true;
    if (this.state === 'running') this.setState('pausing');
  }

  resume(): void {
    if (!this.loop) return void this.start();
    this.pauseRequested = false;
    this.budget = Infinity;
    this.wakeLoop();
  }

  private wakeLoop(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Stops the run: the step in flight is dropped; the last checkpoint keeps what was done. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.setState('stopping');
    this.abort?.abort(new DOMException('stopped by the user', 'AbortError'));
    this.continuePhase();
    this.wakeLoop();
    const loop = this.loop;
    const settled = await Promise.race([loop.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    if (!settled) {
      // A rank is stuck in a long call: end its worker; the loop's promise is abandoned.
      this.trainer?.terminate();
      this.trainer = null;
      this.loop = null;
      this.abort = null;
      this.setState('stopped');
    }
  }

  private run(): void {
    this.clearError();
    this.abort = new AbortController();
    const signal = this.abort.signal;
    this.loop = (async () => {
      this.setState('starting');
      try {
        const trainer = await this.ensureTrainer();
        this.setState('running');
        while (!trainer.done) {
          if (this.pauseRequested || this.budget <= 0) {
            await this.saveCheckpoint();
            this.setState('paused');
            await new Promise<void>((resolve) => (this.wake = resolve));
            if (signal.aborted) break;
            this.setState('running');
          }
          if (signal.aborted) break;
          const { report, eval: ev } = await trainer.step(signal, false, (done, total) => this.emit('evalProgress', { done, total }));
          this.budget -= 1;
          this.emit('step', report);
          if (ev) this.emit('eval', ev);
          this.emit('progress', trainer.progress());
          const every = this.deps.checkpointEvery ?? 1;
          if (ev || trainer.done || trainer.engine.step % every === 0) await this.saveCheckpoint();
        }
        if (signal.aborted) {
          await this.discardRun();
          this.setState('stopped');
        } else {
          this.setState('done');
        }
      } catch (e) {
        if (signal.aborted && isAbort(e)) {
          await this.discardRun();
          this.setState('stopped');
        } else {
          const where = e instanceof RankError ? '' : this.trainer ? `step ${this.trainer.engine.step} (slide ${this.trainer.engine.sampler.plan(this.trainer.engine.step).slide.id})` : 'starting the ranks';
          this.fail(e, where || 'rank');
          if (e instanceof RankError && this.trainer) {
            const slide = this.trainer.engine.sampler.plan(this.trainer.engine.step).slide.id;
            this.lastError = { ...this.lastError!, where: `${this.lastError!.where} (step ${this.trainer.engine.step}, slide ${slide})` };
            this.emit('error', this.lastError);
          }
          await this.discardRun();
          this.setState('error');
        }
      } finally {
        this.loop = null;
        this.abort = null;
      }
    })();
  }

  /** Disposes the current run's engine and workers (history stays for the charts). */
  private async discardRun(): Promise<void> {
    const t = this.trainer;
    this.trainer = null;
    if (t) await t.dispose();
  }

  // ---- checkpoints --------------------------------------------------------------------------------

  private checkpointing: Promise<void> | null = null;

  async saveCheckpoint(): Promise<void> {
    const t = this.trainer;
    if (!t || !this.data || t.engine.step === 0) return;
    const job = (async () => {
      const c: Checkpoint = {
        id: 'latest',
        savedAt: Date.now(),
        hash: this.hash,
        data: this.data!.source,
        step: t.engine.step,
        total: t.total,
        aggregator: await t.engine.aggregatorWeights(),
        encoder: await t.engine.encoderWeights(),
        optimizer: await t.engine.optimizerState(),
        steps: compactSteps(t.history.steps),
        evals: t.history.evals,
      };
      await this.deps.store.save(c);
      this.lastCheckpoint = { step: c.step, savedAt: c.savedAt };
      this.emit('checkpoint', this.lastCheckpoint);
    })();
    this.checkpointing = job;
    try {
      await job;
    } catch (e) {
      this.fail(e, 'saving a checkpoint');
    } finally {
      this.checkpointing = null;
    }
  }

  latestCheckpoint(): Promise<Checkpoint | null> {
    return this.deps.store.load('latest').catch(() => null);
  }

  discardCheckpoint(): Promise<void> {
    return this.deps.store.remove('latest');
  }

  /**
   * Restores a checkpoint: its configuration and data set, the weights and the step, and the
   * history; the run is then paused at that step (resume() continues). The optimizer's moment
   * estimates are not in the checkpoint (the engine does not expose them): they restart at zero.
   */
  async restore(c: Checkpoint): Promise<boolean> {
    if (this.running) throw new Error('stop the run before restoring a checkpoint');
    const s = parseLabHash(c.hash);
    this.config = s.config;
    this.lab = s.lab;
    this.emit('config', { config: this.config, lab: this.lab, hash: this.hash });
    if (c.data.kind === 'files') {
      const names = this.data?.source.kind === 'files' ? this.data.source.names.join('|') : '';
      if (names !== c.data.names.join('|')) {
        this.fail(new Error(`this checkpoint trained on dropped files (${c.data.names.slice(0, 3).join(', ')}...): drop the same files again, then resume`), 'resume');
        return false;
      }
    } else {
      const loaded = c.data.kind === 'demo' ? await this.loadDemo() : await this.setData(async () => loadSynthetic((c.data as { count: number }).count, (c.data as { seed: number }).seed, (c.data as { tilesPerSlide: number }).tilesPerSlide, (c.data as { subset: number }).subset));
      if (!loaded) return false;
    }
    this.setState('starting');
    try {
      const trainer = await this.ensureTrainer();
      trainer.engine.setAggregatorWeights(c.aggregator);
      await trainer.engine.setEncoderWeights(c.encoder);
      if (c.optimizer) await trainer.engine.setOptimizerState(c.optimizer);
      trainer.engine.step = c.step;
      trainer.history.steps.push(...c.steps);
      trainer.history.evals.push(...c.evals);
      for (const s of c.steps) this.emit('step', s);
      for (const ev of c.evals) this.emit('eval', ev);
      this.emit('progress', trainer.progress());
      this.lastCheckpoint = { step: c.step, savedAt: c.savedAt };
      this.emit('checkpoint', this.lastCheckpoint);
      // Park the loop at the restored step: paused, ready to resume.
      this.pauseRequested = true;
      this.budget = 0;
      this.run();
      return true;
    } catch (e) {
      this.fail(e, 'resume');
      await this.discardRun();
      this.setState('error');
      return false;
    }
  }

  // ---- exports --------------------------------------------------------------------------------

  metricsJson(): MetricsJson {
    return metricsJson(this.history, this.config, this.hash, this.rankInfo);
  }

  metricsCsv(): string {
    return metricsCsv(this.history);
  }

  /** Weights of the live run, or of the latest checkpoint when no run is live. */
  async exportWeights(): Promise<WeightsArtifacts> {
    const t = this.trainer;
    if (t) {
      return exportWeights(encoderSpecs(this.config.encoder), await t.engine.encoderWeights(), t.engine.aggSpecs, await t.engine.aggregatorWeights(), { hash: this.hash, step: t.engine.step });
    }
    const c = await this.latestCheckpoint();
    if (!c) throw new Error('no trained weights yet: train at least one step');
    const cfg = parseLabHash(c.hash).config;
    const { aggregatorSpecs } = await import('../core/models/aggregator.ts');
    const { attentionDim, featureDim } = await import('../core/config.ts');
    return exportWeights(encoderSpecs(cfg.encoder), c.encoder, aggregatorSpecs(featureDim(cfg.encoder), attentionDim(cfg.aggregator)), c.aggregator, { hash: c.hash, step: c.step });
  }

  /** Loads exported weights into the current (paused or new) run. */
  async importWeights(modelJson: string, weightsBin: ArrayBuffer): Promise<void> {
    if (this.running) throw new Error('pause or stop the run before importing weights');
    const trainer = await this.ensureTrainerPaused();
    const w = importWeights(modelJson, weightsBin, encoderSpecs(this.config.encoder), trainer.engine.aggSpecs);
    trainer.engine.setAggregatorWeights(w.aggregator);
    await trainer.engine.setEncoderWeights(w.encoder);
    this.emit('log', `imported weights (saved at step ${w.step})`);
  }

  private async ensureTrainerPaused(): Promise<Trainer> {
    if (this.trainer) return this.trainer;
    this.pauseRequested = true;
    this.budget = 0;
    this.run();
    while (this.state === 'starting') await new Promise((r) => setTimeout(r, 20));
    if (!this.trainer) throw new Error(this.lastError?.message ?? 'could not start the ranks');
    return this.trainer;
  }

  // ---- equivalence and experiments --------------------------------------------------------------

  private async busy<T>(what: string, job: (signal: AbortSignal) => Promise<T>): Promise<T | null> {
    if (this.running) {
      this.fail(new Error('stop the training run first'), what);
      return null;
    }
    await this.discardRun();
    const prev = this.data ? 'ready' : 'empty';
    this.clearError();
    this.busyAbort = new AbortController();
    this.setState('busy');
    try {
      await this.ensureMain();
      return await job(this.busyAbort.signal);
    } catch (e) {
      if (!this.busyAbort.signal.aborted) this.fail(e, what);
      return null;
    } finally {
      this.busyAbort = null;
      this.setState(prev);
    }
  }

  /** Cancels a running equivalence check or experiment. */
  cancelBusy(): void {
    this.busyAbort?.abort(new DOMException('cancelled', 'AbortError'));
  }

  private guarded(n: number): RankApi[] {
    return this.deps.makeRanks(n).map((r, i) => guardRank(r, i, { timeoutMs: this.deps.rankTimeoutMs ?? 10 * 60_000 }));
  }

  /** N ranks against the single-graph reference, per step (the paper's gradient-equivalence figure). */
  async runEquivalence(steps = this.lab.eqSteps): Promise<EquivalenceRow[] | null> {
    return this.busy('equivalence', async (signal) => {
      if (!this.data) throw new Error('load a data set first');
      this.equivalenceRows = [];
      this.emit('equivalence', { rows: [], running: true });
      const ranks = this.guarded(this.config.ranks);
      try {
        const rows = await runEquivalence({
          cfg: this.config, slides: this.data.entries, ranks, tileSpec: this.data.tileSpec,
          referenceTiles: this.deps.referenceTiles(this.data.tileSpec), steps, signal,
          onRow: (row) => {
            this.equivalenceRows = [...this.equivalenceRows, row];
            this.emit('equivalence', { rows: this.equivalenceRows, running: true });
          },
        });
        return rows;
      } finally {
        terminateAll(ranks);
        this.emit('equivalence', { rows: this.equivalenceRows, running: false });
      }
    });
  }

  async runExperiment(kind: 'k-sweep' | 'frozen-vs-e2e'): Promise<ExperimentRow[] | null> {
    return this.busy(kind === 'k-sweep' ? 'K sweep' : 'frozen vs end to end', async (signal) => {
      if (!this.data) throw new Error('load a data set first');
      this.experimentRows = [];
      let status = 'starting';
      const emit = (running: boolean) => this.emit('experiment', { kind, rows: this.experimentRows, running, status });
      emit(true);
      const o = {
        cfg: this.config, data: this.data, makeRanks: (n: number) => this.guarded(n), maxSteps: this.lab.expSteps, signal,
        onRunStart: (v: string, i: number, n: number) => { status = `run ${i + 1} of ${n}: ${v}`; emit(true); },
        onStep: (v: string, s: number, total: number, loss: number) => { status = `${v}: step ${s} of ${total}, loss ${loss.toFixed(3)}`; emit(true); },
        onRow: (row: ExperimentRow) => { this.experimentRows = [...this.experimentRows, row]; emit(true); },
      };
      try {
        return kind === 'k-sweep' ? await runKSweep(o, this.lab.sweep) : await runFrozenVsEndToEnd(o);
      } finally {
        status = signal.aborted ? 'cancelled' : 'finished';
        emit(false);
      }
    });
  }
}

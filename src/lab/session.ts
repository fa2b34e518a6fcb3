// LabSession: the lab's controller, framework-free. It holds what the user sees (settings, data
// set, the live run, errors) and emits typed events; the UI, the headless command and tests drive
// it. The work lives beside it:
//   training-loop.ts  start / pause / step / stop, teaching mode
//   checkpoints.ts    what a checkpoint holds, where it is stored, resuming from one
//   lab-jobs.ts       the equivalence check and the experiments (one job at a time: 'busy')
//   dataset.ts, files.ts   loading the demo set, synthetic slides, dropped files
//   run.ts            one training run (ranks, engine, history, validation)
import { parseConfig, type Config } from '../core/config.ts';
import type { EquivalenceRow } from '../core/equivalence.ts';
import type { RankInfo } from '../core/protocol.ts';
import { encoderSpecs } from '../core/models/encoder.ts';
import { applyCheckpoint, checkpointOf, checkpointWeights, dataMismatch, type Checkpoint } from './checkpoints.ts';
import { loadDemo, loadManifest, loadSynthetic, type DataSet } from './dataset.ts';
import { Emitter } from './emitter.ts';
import type { ExperimentRow } from './experiments.ts';
import { encoderSafetensors, exportWeights, importWeights, metricsCsv, metricsJson, type MetricsJson, type WeightsArtifacts } from './export.ts';
import { loadDroppedFiles, type DroppedFile } from './files.ts';
import { guardRank } from './guard.ts';
import { LabJobs, type PaperFiguresUpdate } from './lab-jobs.ts';
import type { PaperFiguresParams } from './paper-figures.ts';
import type { PaperFigures } from './paper-figures-data.ts';
import { DEFAULT_LAB, labHash, manifestUrlOf, parseLabHash, type LabOptions } from './presets.ts';
import { Trainer, type RunHistory } from './run.ts';
import { ACTIVE_STATES, describeError, type ExperimentKind, type LabError, type LabEvents, type LabState, type MainBackendInfo, type SessionDeps } from './session-types.ts';
import { TrainingLoop } from './training-loop.ts';
import { describeFault } from './recovery.ts';
import { PretrainedSlot } from './pretrained.ts';
import { readImportedRun, type ImportedRun } from './run-import.ts';
import type { PretrainedEncoder } from '../core/pretrained.ts';

export type { ExperimentKind, LabError, LabEvents, LabState, MainBackendInfo, SessionDeps } from './session-types.ts';

export class LabSession extends Emitter<LabEvents> {
  config: Config;
  /** The lab's own settings beside the training config (data set, sweep, panel, main-context backend...). */
  options: LabOptions;
  preset: string | null = null;
  state: LabState = 'empty';
  data: DataSet | null = null;
  /** The main context's backend (the aggregator's), once a run or job has set it up. */
  mainBackend: MainBackendInfo | null = null;
  rankInfo: RankInfo[] = [];
  /** The live run (null when none); its history stays in `history` after it ends. */
  trainer: Trainer | null = null;
  history: RunHistory = { steps: [], evals: [] };
  lastError: LabError | null = null;
  lastCheckpoint: { step: number; savedAt: number } | null = null;
  /** The pretrained encoder file loaded in this page (a link names it but cannot carry it). */
  readonly pretrained: PretrainedSlot;
  /** Restoring a checkpoint: its weights replace the initial ones, so a missing pretrained file is fine. */
  private restoring = false;

  private readonly loop: TrainingLoop;
  private readonly jobs: LabJobs;
  /** The settings (ranks' backend | mainBackend) the main context's backend was set up for. */
  private mainBackendKey = '';

  constructor(private readonly deps: SessionDeps, hash = '') {
    super();
    this.pretrained = new PretrainedSlot({ fetcher: deps.fetcher, modelsUrl: deps.modelsUrl });
    let settings = { config: parseConfig({}), lab: { ...DEFAULT_LAB }, preset: null as string | null };
    try {
      settings = parseLabHash(hash);
    } catch (e) {
      this.lastError = describeError(e, 'link');
    }
    this.config = settings.config;
    this.options = settings.lab;
    this.preset = settings.preset;
    const session = this;
    this.loop = new TrainingLoop(
      {
        get trainer() {
          return session.trainer;
        },
        ensureTrainer: (signal) => this.ensureTrainer(signal),
        discardRun: () => this.discardRun(),
        saveCheckpoint: () => this.saveCheckpoint(),
        setAside: (id, reason, step) => this.setAside(id, reason, step),
        emit: (kind, value) => this.emit(kind, value),
      },
      { checkpointEvery: deps.checkpointEvery ?? 1 },
    );
    this.jobs = new LabJobs({
      get running() {
        return session.running;
      },
      get data() {
        return session.data;
      },
      get config() {
        return session.config;
      },
      get options() {
        return session.options;
      },
      get hash() {
        return session.hash;
      },
      emit: (kind, value) => this.emit(kind, value),
      setState: (st) => this.setState(st),
      fail: (e, where) => this.fail(e, where),
      clearError: () => this.clearError(),
      prepare: async (signal) => {
        await this.discardRun();
        await this.ensureMainBackend();
        this.emit('ranks', { main: this.mainBackend, ranks: this.rankInfo });
        return this.initialEncoderWeights(signal);
      },
      makeRanks: (n) => this.deps.makeRanks(n).map((r, i) => guardRank(r, i, { timeoutMs: this.deps.rankTimeoutMs })),
      referenceTiles: deps.referenceTiles,
    });
  }

  get hash(): string {
    return labHash({ config: this.config, lab: this.options });
  }

  get running(): boolean {
    return ACTIVE_STATES.includes(this.state);
  }

  /** Teaching mode: pause after each phase until continuePhase(). */
  get teaching(): boolean {
    return this.loop.teaching;
  }

  /** Every event goes out here; `state` and `lastError` follow their events. */
  override emit<K extends keyof LabEvents>(kind: K, value: LabEvents[K]): void {
    if (kind === 'state') this.state = value as LabState;
    if (kind === 'error') this.lastError = value as LabError | null;
    super.emit(kind, value);
  }

  private setState(s: LabState): void {
    this.emit('state', s);
  }

  /** Records an error for the UI (where it happened, in words). */
  fail(e: unknown, where: string): void {
    this.emit('error', describeError(e, where));
  }

  clearError(): void {
    this.emit('error', null);
  }

  // ---- settings --------------------------------------------------------------------------------

  /** Applies a lab hash (link, preset); refuses while a run is active. Throws ConfigError. */
  applyHash(hash: string): void {
    const s = parseLabHash(hash);
    this.setSettings(s.config, s.lab, s.preset);
  }

  setSettings(config: Config, options: LabOptions = this.options, preset: string | null = null): void {
    if (this.running) throw new Error('stop the run before changing the configuration');
    const cfg = parseConfig(config);
    const changed = JSON.stringify(cfg) !== JSON.stringify(this.config);
    // A new tile grid cuts other tiles: served slides (demo, manifest) are planned again.
    const replan = JSON.stringify(cfg.grid) !== JSON.stringify(this.config.grid) && options.data === this.options.data && (this.data?.source.kind === 'demo' || this.data?.source.kind === 'manifest');
    this.config = cfg;
    this.options = options;
    this.preset = preset;
    if (changed) void this.discardRun();
    this.emit('config', { config: this.config, lab: this.options, hash: this.hash });
    if (replan) void this.loadDefaultData();
  }

  // ---- data ------------------------------------------------------------------------------------

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
    const manifest = manifestUrlOf(this.options.data);
    return manifest ? this.loadManifest(manifest) : this.options.data === 'synthetic' ? this.loadSynthetic() : this.loadDemo();
  }

  loadDemo(): Promise<DataSet | null> {
    return this.setData(() => loadDemo(this.deps.demoUrl ?? '/demo/demo.json', this.options.subset, this.deps.fetcher ?? fetch.bind(globalThis), this.config.grid));
  }

  /** A cohort from a manifest URL (slides by HTTP range requests), planned on the config's grid. */
  loadManifest(url: string, subset = this.options.subset): Promise<DataSet | null> {
    const onProgress = (done: number, total: number, name: string) => this.emit('loading', { done, total, name });
    return this.setData(() => loadManifest(url, subset, this.deps.fetcher ?? fetch.bind(globalThis), this.config.grid, { onProgress }));
  }

  loadSynthetic(count = 16, seed = this.config.seed, tilesPerSlide = 32, subset = this.options.subset): Promise<DataSet | null> {
    return this.setData(async () => loadSynthetic(count, seed, tilesPerSlide, subset));
  }

  loadFiles(files: DroppedFile[]): Promise<DataSet | null> {
    return this.setData(() => loadDroppedFiles(files, { onProgress: (done, total, name) => this.emit('loading', { done, total, name }), grid: this.config.grid, subset: this.options.subset }));
  }

  // ---- pretrained encoder ----------------------------------------------------------------------

  /**
   * Loads a pretrained encoder file (safetensors or a torch.save checkpoint): detects its
   * architecture, maps its weights, and sets the encoder settings to match. On bad input the
   * error names the file and the reason, and the settings, the run and its weights stay as they were.
   */
  async loadPretrained(blob: Blob, file: string): Promise<PretrainedEncoder | null> {
    if (this.running) {
      this.fail(new Error('stop the run before loading another encoder'), 'pretrained encoder');
      return null;
    }
    this.emit('log', `reading ${file}…`);
    try {
      const p = await this.pretrained.load(blob, file, this.config); // changes nothing when it throws
      this.setSettings({ ...this.config, encoder: p.encoder, frozenEncoder: this.config.frozenEncoder }, this.options, null);
      this.emit('pretrained', p);
      this.emit('log', `loaded ${file}`);
      return p;
    } catch (e) {
      this.fail(e, 'pretrained encoder');
      return null;
    }
  }

  /** Loads a built-in encoder (BUILTIN_MODELS) by URL, unless that file is loaded already. */
  async loadBuiltin(name: string, signal?: AbortSignal): Promise<PretrainedEncoder | null> {
    if (this.pretrained.loaded?.file === name) return this.pretrained.loaded;
    return this.loadPretrained(await this.pretrained.builtinBlob(name, signal), name);
  }

  /** [P] the encoder weights a run or job starts from (PretrainedSlot.initialWeights; no settings change). */
  private initialEncoderWeights(signal?: AbortSignal): Promise<Float32Array | undefined> {
    return this.pretrained.initialWeights(this.config, this.restoring, (p) => this.emit('pretrained', p), signal);
  }

  /** Back to the seed's random encoder weights. */
  clearPretrained(): void {
    this.pretrained.clear();
    this.setSettings({ ...this.config, encoder: { ...this.config.encoder, pretrained: '' } }, this.options, null);
    this.emit('pretrained', null);
  }

  // ---- the live run ----------------------------------------------------------------------------

  /** Sets up the main context's backend when none is, or when its settings changed. */
  private async ensureMainBackend(): Promise<void> {
    const key = `${this.config.backend}|${this.options.mainBackend}`;
    if (this.mainBackend && this.mainBackendKey === key) return;
    const choice = this.options.mainBackend;
    const info = await this.deps.setupMain(this.config.backend, choice);
    this.mainBackend = { ...info, choice, why: info.why ?? `setting mainBackend=${choice}` };
    this.mainBackendKey = key;
  }

  private async ensureTrainer(signal?: AbortSignal): Promise<Trainer> {
    if (this.trainer) return this.trainer;
    if (!this.data) throw new Error('load a data set first');
    await this.discardRun();
    await this.ensureMainBackend();
    const encoderWeights = await this.initialEncoderWeights(signal);
    const trainer = await Trainer.create({
      cfg: this.config,
      data: this.data,
      makeRanks: this.deps.makeRanks,
      rankTimeoutMs: this.deps.rankTimeoutMs,
      onPhase: (e) => this.loop.onPhase(e),
      onFault: (n) => {
        const text = describeFault(n);
        this.emit('log', text);
        this.emit('fault', { ...n, text });
      },
      signal,
      encoderWeights,
    });
    this.trainer = trainer;
    this.history = trainer.history;
    this.rankInfo = trainer.rankInfo;
    this.emit('run', this.history);
    this.emit('ranks', { main: this.mainBackend, ranks: this.rankInfo });
    this.emit('progress', trainer.progress());
    return trainer;
  }

  /** Disposes the current run's engine and workers (history stays for the charts). */
  private async discardRun(): Promise<void> {
    const t = this.trainer;
    this.trainer = null;
    if (t) await t.dispose();
  }

  /** Starts (or continues) training until done, pause or stop. */
  start(): Promise<void> {
    return this.loop.start();
  }

  /** Runs exactly one step, then pauses. */
  step(): Promise<void> {
    return this.loop.step();
  }

  pause(): void {
    this.loop.pause();
  }

  resume(): void {
    this.loop.resume();
  }

  /** Stops the run: the step in flight is dropped; the last checkpoint keeps what was done. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Teaching mode: go on to the next phase. */
  continuePhase(): void {
    this.loop.continuePhase();
  }

  setTeaching(on: boolean): void {
    this.loop.setTeaching(on);
  }

  // ---- checkpoints -----------------------------------------------------------------------------

  async saveCheckpoint(): Promise<void> {
    const t = this.trainer;
    if (!t || !this.data || t.engine.step === 0) return;
    try {
      const c = await checkpointOf(t, this.data, this.hash);
      await this.deps.store.save(c);
      this.lastCheckpoint = { step: c.step, savedAt: c.savedAt };
      this.emit('checkpoint', this.lastCheckpoint);
      if (this.deps.store.unavailable) this.storageNotice(this.deps.store.unavailable);
      else this.storageFailed = false;
    } catch (e) {
      this.storageNotice(`${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /** Set when saving a checkpoint failed: the notice is shown once until a save succeeds again. */
  private storageFailed = false;

  /** Storage full (QuotaExceededError) or unavailable (private windows): training goes on, with one clear notice. */
  private storageNotice(why: string): void {
    if (this.storageFailed) return;
    this.storageFailed = true;
    this.fail(new Error(`checkpoints are not being saved (${why}): the browser's storage is full or unavailable. Training goes on, but a reload cannot resume this run; export the weights to keep them.`), 'checkpoints');
  }

  /** A training slide that failed mid-run (file gone, tile not decodable): listed as set aside with its reason. */
  private setAside(slideId: string, reason: string, step: number): void {
    if (this.data) {
      this.data = { ...this.data, slides: this.data.slides.map((s) => (s.id === slideId ? { ...s, error: `set aside at step ${step}: ${reason}` } : s)) };
      this.emit('data', this.data);
    }
    this.emit('log', `slide ${slideId} set aside at step ${step} (${reason}); the step went on with the next slide`);
  }

  /**
   * The page's own WebGPU device was lost (GPUDevice.lost), and the aggregator's weights with it:
   * the run in flight stops, the next start sets up a new device, and training goes on from the
   * last checkpoint (weights and both optimizers' state; saved every `checkpointEvery` steps).
   * The user sees what happened. Wired to runtime/webgpu.ts's onDeviceLost in browser.ts.
   */
  async mainDeviceLost(reason: string): Promise<void> {
    this.mainBackend = null;
    this.mainBackendKey = '';
    if (!this.loop.active) return;
    const lostAt = this.trainer?.engine.step ?? 0;
    await this.loop.stop();
    const c = await this.latestCheckpoint();
    if (!c) {
      this.fail(new Error(`the page's WebGPU device was lost (${reason}) at step ${lostAt} and there is no checkpoint to go on from: start again`), 'main context');
      return;
    }
    // restore() parks the loop at the checkpoint's step; go on once it is parked.
    const parked = new Promise<void>((resolve) => {
      const off = this.on('state', (s) => s === 'paused' && (off(), resolve()));
    });
    if (!(await this.restore(c))) return;
    if (this.state !== 'paused') await parked;
    const text = `the page's WebGPU device was lost (${reason}) at step ${lostAt}; a new device was set up and training goes on from the checkpoint of step ${c.step}`;
    this.emit('log', text);
    this.emit('fault', { kind: 'device-lost', rank: -1, call: 'aggregator', reason, step: lostAt, restarted: [], donor: -1, detectedAt: performance.now(), restoredAt: performance.now(), attempt: 1, retried: true, text });
    await this.start();
  }

  latestCheckpoint(): Promise<Checkpoint | null> {
    return this.deps.store.load('latest').catch(() => null);
  }

  discardCheckpoint(): Promise<void> {
    return this.deps.store.remove('latest');
  }

  /**
   * Restores a checkpoint: its configuration and data set, the weights, both optimizers' state,
   * the step and the history; the run is then paused at that step (resume() continues).
   */
  async restore(c: Checkpoint): Promise<boolean> {
    if (this.running) throw new Error('stop the run before restoring a checkpoint');
    const s = parseLabHash(c.hash);
    this.config = s.config;
    this.options = s.lab;
    this.emit('config', { config: this.config, lab: this.options, hash: this.hash });
    const mismatch = dataMismatch(c, this.data);
    if (mismatch) {
      this.fail(new Error(mismatch), 'resume');
      return false;
    }
    if (c.data.kind !== 'files') {
      const d = c.data;
      const loaded = d.kind === 'demo' ? await this.loadDemo() : d.kind === 'manifest' ? await this.loadManifest(d.url, d.subset) : await this.loadSynthetic(d.count, d.seed, d.tilesPerSlide, d.subset);
      if (!loaded) return false;
    }
    return this.bringBack('resume', async (trainer) => {
      await applyCheckpoint(trainer, c);
      for (const s of c.setAside ?? []) this.setAside(s.id, s.reason, s.step);
      this.lastCheckpoint = { step: c.step, savedAt: c.savedAt };
      this.emit('checkpoint', this.lastCheckpoint);
      return c;
    });
  }

  /**
   * Starts the ranks for a run brought back (its weights replace the initial ones), lets `apply`
   * set its state, replays the history it returns to the UI, and parks the loop at its step,
   * ready to resume. On failure the error is shown under `where` and the run is discarded.
   */
  private async bringBack(where: string, apply: (t: Trainer) => Promise<Pick<RunHistory, 'steps' | 'evals'>>): Promise<boolean> {
    this.setState('starting');
    try {
      this.restoring = true;
      const trainer = await this.ensureTrainer().finally(() => (this.restoring = false));
      const history = await apply(trainer);
      for (const s of history.steps) this.emit('step', s);
      for (const ev of history.evals) this.emit('eval', ev);
      this.emit('progress', trainer.progress());
      void this.loop.park();
      return true;
    } catch (e) {
      this.fail(e, where);
      await this.discardRun();
      this.setState('error');
      return false;
    }
  }

  /**
   * Brings back a run trained elsewhere (PyTorch torch.distributed: `python -m slidelab.train`
   * writes checkpoint.safetensors + metrics.json in the lab's names): its configuration, weights
   * and history, paused at its step; the charts, ROC and heatmaps show it, Evaluate re-validates it
   * here, and training can go on. On a bad file the error names it and nothing changes.
   */
  async importRun(files: { name: string; blob: Blob }[]): Promise<boolean> {
    if (this.running) {
      this.fail(new Error('stop the run before importing another'), 'import a run');
      return false;
    }
    let run: ImportedRun;
    try {
      run = await readImportedRun(files);
    } catch (e) {
      this.fail(e, 'import a run');
      return false;
    }
    const s = parseLabHash(run.hash);
    this.config = s.config;
    this.options = s.lab;
    this.emit('config', { config: this.config, lab: this.options, hash: this.hash });
    if (!(await this.loadDefaultData())) return false; // the run's data set, as its hash names it
    return this.bringBack('import a run', async (trainer) => {
      trainer.engine.setAggregatorWeights(run.aggregator);
      await trainer.engine.setEncoderWeights(run.encoder);
      trainer.engine.step = Math.min(run.step, trainer.total);
      trainer.history.steps.push(...run.history.steps);
      trainer.history.evals.push(...run.history.evals);
      this.emit('log', `imported a ${run.source} run at step ${run.step}`);
      return run.history;
    });
  }

  /** Validates the current model on the validation slides now (the ROC and the heatmaps follow). */
  async evaluateNow(): Promise<void> {
    const t = this.trainer;
    if (!t || this.running) throw new Error(t ? 'pause the run first' : 'no model yet: train, resume or import a run');
    const ev = await t.evaluate(undefined, (done, total) => this.emit('evalProgress', { done, total }));
    for (const s of ev.setAside ?? []) this.setAside(s.slideId, `validation: ${s.reason}`, t.engine.step);
    this.emit('eval', ev);
  }

  // ---- exports ---------------------------------------------------------------------------------

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
      return exportWeights(encoderSpecs(this.config.encoder, this.config.tileSize), await t.engine.encoderWeights(), t.engine.aggSpecs, await t.engine.aggregatorWeights(), { hash: this.hash, step: t.engine.step });
    }
    const c = await this.latestCheckpoint();
    if (!c) throw new Error('no trained weights yet: train at least one step');
    return checkpointWeights(c);
  }

  /**
   * The encoder's current weights as .safetensors: a pretrained family's own names and PyTorch
   * layouts (loadable back into timm / Hugging Face / torchvision, and into the lab); otherwise
   * the lab's names and layouts. From the live run, else the loaded pretrained file.
   */
  async exportEncoderSafetensors(): Promise<{ name: string; bytes: Uint8Array }> {
    const cfg = this.config;
    const p = this.pretrained.loaded;
    const fromFile = p && cfg.encoder.pretrained === p.file ? p : null;
    const weights = this.trainer ? await this.trainer.engine.encoderWeights() : fromFile ? await this.pretrained.weightsFor(cfg) : undefined;
    if (!weights) throw new Error('no encoder weights yet: load a pretrained encoder or train a step');
    return encoderSafetensors(cfg, weights, { hash: this.hash, step: this.trainer?.engine.step ?? 0, pretrained: fromFile });
  }

  /** Loads exported weights into the current (paused or new) run. */
  async importWeights(modelJson: string, weightsBin: ArrayBuffer): Promise<void> {
    if (this.running) throw new Error('pause or stop the run before importing weights');
    const trainer = this.trainer ?? (await this.loop.park());
    if (!trainer) throw new Error(this.lastError?.message ?? 'could not start the ranks');
    const w = importWeights(modelJson, weightsBin, encoderSpecs(this.config.encoder, this.config.tileSize), trainer.engine.aggSpecs);
    trainer.engine.setAggregatorWeights(w.aggregator);
    await trainer.engine.setEncoderWeights(w.encoder);
    this.emit('log', `imported weights (saved at step ${w.step})`);
  }

  // ---- equivalence and experiments (lab-jobs.ts) ------------------------------------------------

  get equivalenceRows(): EquivalenceRow[] {
    return this.jobs.equivalenceRows;
  }
  get experimentRows(): ExperimentRow[] {
    return this.jobs.experimentRows;
  }
  get paperFigures(): PaperFigures | null {
    return this.jobs.paperFigures;
  }
  get paperFiguresProgress(): PaperFiguresUpdate | null {
    return this.jobs.paperFiguresProgress;
  }

  /** N ranks against the single-graph reference, per step (the paper's gradient-equivalence figure). */
  runEquivalence(steps = this.options.eqSteps): Promise<EquivalenceRow[] | null> {
    return this.jobs.equivalence(steps);
  }

  /** The K sweep or frozen vs end to end; the runs share one set of rank workers. */
  runExperiment(kind: ExperimentKind): Promise<ExperimentRow[] | null> {
    return this.jobs.experiment(kind);
  }

  /** The paper figures: R runs per arm (K values end to end and frozen) on Monte Carlo splits; `onUpdate` sees the progress. */
  runPaperFigures(params: Partial<PaperFiguresParams> = {}, onUpdate?: (u: PaperFiguresUpdate) => void): Promise<PaperFigures | null> {
    return this.jobs.paper(params, onUpdate);
  }

  /** Cancels a running equivalence check or experiment. */
  cancelBusy(): void {
    this.jobs.cancel();
  }
}

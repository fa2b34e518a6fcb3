// Training control: the step loop of the session's one live run, with start, pause, resume,
// single step and stop, and teaching mode (each phase's end holds the step until "next phase").
// The loop owns only control state; the run itself (Trainer) and everything the user sees
// (state, events, checkpoints, errors) belong to the session and reach it through LoopHost.
import type { PhaseEvent } from '../core/report.ts';
import { abortable, abortError, isAbort } from './abort.ts';
import { RankError } from './guard.ts';
import type { Trainer } from './run.ts';
import type { LabError, LabEvents, LabState } from './session-types.ts';

/** What the loop needs from the session. */
export interface LoopHost {
  readonly state: LabState;
  readonly teaching: boolean;
  readonly trainer: Trainer | null;
  readonly lastError: LabError | null;
  /** Save a checkpoint every this many steps (and at every evaluation, the end and each pause). */
  readonly checkpointEvery: number;
  setState(s: LabState): void;
  emit<K extends keyof LabEvents>(kind: K, value: LabEvents[K]): void;
  fail(e: unknown, where: string): void;
  /** Replaces the current error (to add the step and slide to a rank's error). */
  setError(e: LabError): void;
  clearError(): void;
  /** The live run's trainer, created (workers started) when there is none. */
  ensureTrainer(signal: AbortSignal): Promise<Trainer>;
  /** Disposes the live run's engine and workers. */
  discardRun(): Promise<void>;
  saveCheckpoint(): Promise<void>;
}

/** How long stop() waits for the step in flight before it terminates the workers. */
const STOP_GRACE_MS = 5000;

export class TrainingLoop {
  /** Stop: the loop ends after the step in flight (which sees this signal between phases). */
  private abort: AbortController | null = null;
  /** Stop, when the step in flight does not end in time: the loop stops waiting for it at once. */
  private kill: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private pauseRequested = false;
  /** Steps left before the loop pauses by itself (1 for "Step"). */
  private budget = Infinity;
  /** Resolves the loop's pause. */
  private wake: (() => void) | null = null;
  /** Teaching mode: the phase the step is held at, and what lets it go on. */
  private held: { event: PhaseEvent; release: () => void } | null = null;

  constructor(private readonly host: LoopHost) {}

  /** Whether a loop is live (running, paused, or starting). */
  get active(): boolean {
    return this.loop !== null;
  }

  /** Starts (or continues) training until done, pause or stop. */
  async start(): Promise<void> {
    if (this.loop) return this.resume();
    if (this.host.trainer?.done) await this.host.discardRun(); // a finished run: start a fresh one
    this.pauseRequested = false;
    this.budget = Infinity;
    this.run();
  }

  /** Runs exactly one step, then pauses. */
  async step(): Promise<void> {
    this.budget = 1;
    this.pauseRequested = false;
    if (this.loop) return this.wakeLoop();
    if (this.host.trainer?.done) await this.host.discardRun();
    this.run();
  }

  pause(): void {
    if (!this.loop) return;
    this.pauseRequested = true;
    if (this.host.state === 'running') this.host.setState('pausing');
  }

  resume(): void {
    if (!this.loop) return void this.start();
    this.pauseRequested = false;
    this.budget = Infinity;
    this.wakeLoop();
  }

  /**
   * Starts the loop parked: it creates the trainer when there is none, then pauses before the
   * first step (a restored checkpoint, imported weights). Resolves with the trainer, or null
   * when the ranks could not start (the error is then the session's lastError).
   */
  park(): Promise<Trainer | null> {
    this.pauseRequested = true;
    this.budget = 0;
    return new Promise((resolve) => this.run(resolve));
  }

  /** Stops the run: the step in flight is dropped; the last checkpoint keeps what was done. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.host.setState('stopping');
    this.abort?.abort(abortError('stopped by the user'));
    this.continuePhase();
    this.wakeLoop();
    const loop = this.loop;
    const settled = await Promise.race([loop.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), STOP_GRACE_MS))]);
    if (!settled) {
      // A rank is stuck in a long call: end the workers and stop waiting for its answer.
      this.host.trainer?.terminate();
      this.kill?.abort(abortError('a rank did not answer the stop'));
      await loop.catch(() => undefined);
    }
  }

  /** Engine phase hook: in teaching mode, holds the step at each phase's end. */
  async onPhase(e: PhaseEvent): Promise<void> {
    const waiting = this.host.teaching && e.at === 'end' && !this.abort?.signal.aborted;
    this.host.emit('phase', { ...e, waiting });
    if (waiting) await new Promise<void>((release) => (this.held = { event: e, release }));
  }

  /** Teaching mode: go on to the next phase. */
  continuePhase(): void {
    const held = this.held;
    this.held = null;
    if (!held) return;
    this.host.emit('phase', { ...held.event, waiting: false }); // the phase is no longer waiting
    held.release();
  }

  private wakeLoop(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private run(onReady?: (t: Trainer | null) => void): void {
    const host = this.host;
    host.clearError();
    this.abort = new AbortController();
    this.kill = new AbortController();
    const signal = this.abort.signal;
    const kill = this.kill.signal;
    this.loop = (async () => {
      host.setState('starting');
      let trainer: Trainer | null = null;
      try {
        trainer = await host.ensureTrainer(signal);
        onReady?.(trainer);
        host.setState('running');
        while (!trainer.done) {
          if (this.pauseRequested || this.budget <= 0) {
            await host.saveCheckpoint();
            host.setState('paused');
            await new Promise<void>((resolve) => (this.wake = resolve));
            if (signal.aborted) break;
            host.setState('running');
          }
          if (signal.aborted) break;
          const { report, eval: ev } = await abortable(trainer.step(signal, false, (done, total) => host.emit('evalProgress', { done, total })), kill);
          this.budget -= 1;
          host.emit('step', report);
          if (ev) host.emit('eval', ev);
          host.emit('progress', trainer.progress());
          if (ev || trainer.done || trainer.engine.step % host.checkpointEvery === 0) await host.saveCheckpoint();
        }
        if (signal.aborted) {
          await host.discardRun();
          host.setState('stopped');
        } else {
          host.setState('done');
        }
      } catch (e) {
        onReady?.(null);
        if (signal.aborted && isAbort(e)) {
          await host.discardRun();
          host.setState('stopped');
        } else {
          this.report(e, trainer);
          await host.discardRun();
          host.setState('error');
        }
      } finally {
        this.loop = null;
        this.abort = null;
        this.kill = null;
      }
    })();
  }

  /** A failed step says where: the rank and call, the step, the slide. */
  private report(e: unknown, trainer: Trainer | null): void {
    if (!trainer) return this.host.fail(e, 'starting the ranks');
    const step = trainer.engine.step;
    const slide = trainer.engine.sampler.plan(step).slide.id;
    if (!(e instanceof RankError)) return this.host.fail(e, `step ${step} (slide ${slide})`);
    this.host.fail(e, 'rank');
    this.host.setError({ ...this.host.lastError!, where: `${this.host.lastError!.where} (step ${step}, slide ${slide})` });
  }
}

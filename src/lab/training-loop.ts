// Training control: the step loop of the session's one live run, with start, pause, resume,
// single step and stop, and teaching mode (each phase's end holds the step until "next phase").
// The loop owns only control state; the run itself (Trainer) and everything the user sees
// (state, events, checkpoints, errors) belong to the session and reach it through LoopHost.
import type { PhaseEvent } from '../core/report.ts';
import { slideReadFailure } from '../core/faults.ts';
import { abortable, abortError, isAbort } from './abort.ts';
import { RankError } from './guard.ts';
import type { Trainer } from './run.ts';
import { describeError, type LabError, type LabEvents, type LabState } from './session-types.ts';

/** What the loop needs from the session: the run's trainer, checkpoints, and one sink for what the user sees. */
export interface LoopHost {
  /** The live run's trainer (null when none). */
  readonly trainer: Trainer | null;
  /** The live run's trainer, created (workers started) when there is none. */
  ensureTrainer(signal: AbortSignal): Promise<Trainer>;
  /** Disposes the live run's engine and workers. */
  discardRun(): Promise<void>;
  saveCheckpoint(): Promise<void>;
  /** A training slide whose tiles could not be read mid-run: the session lists it as set aside with the reason. */
  setAside?(slideId: string, reason: string, step: number): void;
  /** The session's state, events and errors ('error' with null clears the error). */
  emit<K extends keyof LabEvents>(kind: K, value: LabEvents[K]): void;
}

export interface LoopOptions {
  /** Save a checkpoint every this many steps (and at every evaluation, the end and each pause). */
  checkpointEvery: number;
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
  /** Teaching mode: hold the step at each phase's end until continuePhase(). */
  private teachingMode = false;
  /** The state this loop last reported. */
  private state: LabState | null = null;
  /** Pause: cuts the step in flight while its ranks still read and encode (nothing has changed yet: the step is redone on resume). */
  private cut: AbortController | null = null;
  /** The step in flight's latest phase event (null between steps). */
  private phaseNow: PhaseEvent | null = null;

  constructor(
    private readonly host: LoopHost,
    private readonly options: LoopOptions,
  ) {}

  get teaching(): boolean {
    return this.teachingMode;
  }

  setTeaching(on: boolean): void {
    this.teachingMode = on;
    if (!on) this.continuePhase();
  }

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
    if (this.state === 'running') this.setState('pausing');
    // In the forward phase no weight has changed yet: drop the step and redo it on resume. Later in
    // the step the aggregator has been updated, so the step runs to its end (the engine checks the
    // cut right after the gather, before the aggregator, so the two cannot overlap).
    const p = this.phaseNow;
    if (this.cut && p?.phase === 'forward' && p.at === 'start') {
      this.cut.abort(abortError('paused'));
      this.cancelRanks();
    }
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
    this.setState('stopping');
    this.abort?.abort(abortError('stopped by the user'));
    this.cancelRanks(); // the ranks drop their reads, decodes and encode or recompute in flight
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

  /** Asks every rank of the live run to drop the work in flight (the call waiting on it rejects with an AbortError). */
  private cancelRanks(): void {
    for (const r of this.host.trainer?.ranks ?? []) void r.cancel().catch(() => undefined);
  }

  /** Engine phase hook: in teaching mode, holds the step at each phase's end. */
  async onPhase(e: PhaseEvent): Promise<void> {
    this.phaseNow = e;
    const waiting = this.teachingMode && e.at === 'end' && !this.abort?.signal.aborted;
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

  private setState(s: LabState): void {
    this.state = s;
    this.host.emit('state', s);
  }

  private wakeLoop(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private run(onReady?: (t: Trainer | null) => void): void {
    const host = this.host;
    host.emit('error', null);
    this.abort = new AbortController();
    this.kill = new AbortController();
    const signal = this.abort.signal;
    const kill = this.kill.signal;
    this.loop = (async () => {
      this.setState('starting');
      let trainer: Trainer | null = null;
      try {
        trainer = await host.ensureTrainer(signal);
        onReady?.(trainer);
        this.setState('running');
        while (!trainer.done) {
          if (this.pauseRequested || this.budget <= 0) {
            await host.saveCheckpoint();
            this.setState('paused');
            await new Promise<void>((resolve) => (this.wake = resolve));
            if (signal.aborted) break;
            this.setState('running');
          }
          if (signal.aborted) break;
          const cut = (this.cut = new AbortController());
          let out: Awaited<ReturnType<Trainer['step']>>;
          try {
            out = await abortable(trainer.step(AbortSignal.any([signal, cut.signal]), false, (done, total) => host.emit('evalProgress', { done, total })), kill);
          } catch (e) {
            if (cut.signal.aborted && !signal.aborted && isAbort(e)) continue; // cut by a pause before any change: redone on resume
            const unreadable = !signal.aborted && this.phaseNow?.phase === 'forward' && this.phaseNow.step === trainer.engine.step ? slideFailure(e) : null;
            if (unreadable === null) throw e;
            // The slide's tiles could not be read while the ranks encoded it: no weight has changed.
            // Set it aside and redo the step on the next slide of the epoch's order.
            const slide = trainer.engine.sampler.plan(trainer.engine.step).slide.id;
            trainer.engine.sampler.setAside.add(slide);
            host.setAside?.(slide, unreadable, trainer.engine.step);
            continue;
          } finally {
            this.cut = null;
            this.phaseNow = null;
          }
          const { report, eval: ev } = out;
          this.budget -= 1;
          host.emit('step', report);
          for (const s of ev?.setAside ?? []) host.setAside?.(s.slideId, `validation: ${s.reason}`, trainer.engine.step);
          if (ev) host.emit('eval', ev);
          host.emit('progress', trainer.progress());
          if (ev || trainer.done || trainer.engine.step % this.options.checkpointEvery === 0) await host.saveCheckpoint();
        }
        if (signal.aborted) {
          await host.discardRun();
          this.setState('stopped');
        } else {
          this.setState('done');
        }
      } catch (e) {
        onReady?.(null);
        if (signal.aborted && isAbort(e)) {
          await host.discardRun();
          this.setState('stopped');
        } else {
          host.emit('error', failure(e, trainer));
          await host.discardRun();
          this.setState('error');
        }
      } finally {
        this.loop = null;
        this.abort = null;
        this.kill = null;
      }
    })();
  }
}

/**
 * Why a rank could not read a slide's tiles (a SlideError from its tile source: the file has gone,
 * a tile does not decode), or null for any other failure (a crashed rank, a bug, an abort).
 */
export function slideFailure(e: unknown): string | null {
  return isAbort(e) ? null : slideReadFailure(e);
}

/** A failed start or step, in words: where (the rank and call, the step, the slide) and why. */
function failure(e: unknown, trainer: Trainer | null): LabError {
  if (!trainer) return describeError(e, 'starting the ranks');
  const step = trainer.engine.step;
  const slide = trainer.engine.sampler.plan(step).slide.id;
  if (!(e instanceof RankError)) return describeError(e, `step ${step} (slide ${slide})`);
  const error = describeError(e, 'rank');
  return { ...error, where: `${error.where} (step ${step}, slide ${slide})` };
}

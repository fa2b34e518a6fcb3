// Gradient equivalence (the paper's central claim): N ranks with gather/scatter and pseudo-loss
// against the single-graph reference, from the same seed, step by step. Produces the data of the
// paper's figure: |loss difference| and normalised L1 differences of parameters and gradients
// of the first encoder layer, a deep encoder layer and the aggregator's classifier, along the two
// trajectories; and, beside it, the same two differences for every parameter of encoder and
// aggregator, each step from the same start (see EveryParamFigures), bounded per backend.
import { tf, type Tensor } from './tf.ts';
import type { Config } from './config.ts';
import { Engine, type EngineOptions } from './engine.ts';
import { encoderSpecs, trackedEncoderLayers } from './models/encoder.ts';
import { TRACKED_AGGREGATOR_LAYER } from './models/aggregator.ts';
import { createParams, disposeParams, readParams, unpack, writeParams, type ParamSpec, type Params } from './params.ts';
import { ReferenceTrainer } from './reference.ts';
import { normalizedL1 } from './metrics.ts';
import { AdamW } from './optim/adamw.ts';
import { encoderLrScales } from './optim/fine-tune.ts';
import { appliesAfter, GradientSum } from './optim/accumulate.ts';
import type { RankApi } from './protocol.ts';
import type { SlideEntry } from './sampler.ts';
import type { TileSource, TileSourceSpec } from './tiles.ts';

/** float32 sums in another order differ by rounding; these bounds are far above that and far below any real bug. */
export const TOLERANCE = { loss: 1e-4, param: 1e-4, grad: 1e-4 } as const;

/**
 * The every-parameter bound, by the backend the run computed on (webgpu if the reference or any
 * rank did). Each step starts both sides from the same weights and AdamW state, so the figures
 * hold only this step's differences. Measured worst figures: cpu backend, the order of float32
 * sums only, 1.1e-7 with in-process ranks (tiny CNN N=1..4 over 3 steps, GroupNorm ResNet-18 over
 * 2) and 3.9e-7 with worker ranks (npm run equivalence: N=1,2,4, 5 steps). WebGPU (Dawn on
 * SwiftShader, same run) also tiles its sums by batch, so features differ in the last bits: 4.8e-5
 * on the gradient of agg.attn_a.b, a nearly cancelling sum over tiles (softmax's gradient sums
 * to 0); every other parameter within 1.3e-6.
 */
export const EVERY_PARAM_TOLERANCE = { cpu: 1e-5, webgpu: 1e-4 } as const;

/**
 * Parameters the loss does not depend on: the attention's last bias adds the same number to every
 * tile's score, which softmax ignores. Its gradient is 0 in exact arithmetic, so both sides hold
 * rounding noise (which AdamW scales up to steps of about lr): wherever the features differ in the
 * last bits (webgpu) its figures are of order 1. They are listed in `param` and `grad` but are no
 * evidence either way, and are left out of `worst*`, `zeroGrad` and `pass`.
 */
export const LOSS_INVARIANT_PARAMS: readonly string[] = ['agg.attn_c.b'];

export interface ParamFigure {
  /** Parameter name, e.g. 'enc.layer2.0.norm1.beta' or 'agg.classifier.w'. */
  name: string;
  value: number;
}

/**
 * Every parameter of encoder and aggregator, not only the tracked layers. Unlike the tracked
 * figures, which follow the two trajectories apart (their rounding differences compound, and
 * gradients that are nearly cancelling sums, such as a GroupNorm shift or an attention bias, turn
 * that into 1e-5..1e-4 within 2-5 steps on the cpu backend), each step is compared from the same
 * start: the reference's gradient at the engine's weights before the step, and the reference's
 * AdamW update from the engine's weights and AdamW state before the step.
 */
export interface EveryParamFigures {
  /** The backend the bound is chosen for: 'webgpu' if the reference or any rank ran on it. */
  backend: 'cpu' | 'webgpu';
  tolerance: number;
  /** Normalised L1 difference of each parameter after the step, by name (encoder, then aggregator). */
  param: Record<string, number>;
  /** Normalised L1 difference of each parameter's gradient (the engine's summed encoder gradient; the aggregator's). */
  grad: Record<string, number>;
  /** The largest figures and their parameters (LOSS_INVARIANT_PARAMS aside). */
  worstParam: ParamFigure;
  worstGrad: ParamFigure;
  /**
   * Parameters whose reference gradient is all zeros this step: for them the gradient figure is
   * 0 whatever the engine does (no gradient reached them: frozen layers, dead units, GroupNorm of
   * a single value on tiles too small for the encoder).
   */
  zeroGrad: string[];
  /** Every figure within `tolerance` (and not NaN), LOSS_INVARIANT_PARAMS aside. */
  pass: boolean;
}

/** The largest figure and its parameter, LOSS_INVARIANT_PARAMS aside; NaN counts as the worst. */
export function worstOf(figures: Record<string, number>): ParamFigure {
  let worst: ParamFigure = { name: '', value: 0 };
  for (const [name, value] of Object.entries(figures)) {
    if (LOSS_INVARIANT_PARAMS.includes(name)) continue;
    if (Number.isNaN(value)) return { name, value };
    if (!worst.name || value > worst.value) worst = { name, value };
  }
  return worst;
}

export function everyParamFigures(
  backend: 'cpu' | 'webgpu', tolerance: number, param: Record<string, number>, grad: Record<string, number>, zeroGrad: string[] = [],
): EveryParamFigures {
  const worstParam = worstOf(param);
  const worstGrad = worstOf(grad);
  const pass = worstParam.value <= tolerance && worstGrad.value <= tolerance; // false for NaN
  return { backend, tolerance, param, grad, worstParam, worstGrad, zeroGrad: zeroGrad.filter((n) => !LOSS_INVARIANT_PARAMS.includes(n)), pass };
}

export interface EquivalenceRow {
  ranks: number;
  step: number;
  lossReference: number;
  lossRanks: number;
  lossDiff: number;
  /** Normalised L1 difference of parameters after the step, per tracked layer. */
  param: Record<string, number>;
  /** Normalised L1 difference of this step's gradients, per tracked layer. */
  grad: Record<string, number>;
  pass: boolean;
  /** Wall time of the N-rank step and of the reference step, ms. */
  stepMs: number;
  referenceMs: number;
  /** The same differences for every parameter, with a tolerance per backend. `pass` above is the tracked layers' only. */
  every: EveryParamFigures;
}

export function trackedLayers(cfg: Config): string[] {
  return [...trackedEncoderLayers(cfg.encoder), TRACKED_AGGREGATOR_LAYER];
}

export function rowPasses(row: Pick<EquivalenceRow, 'lossDiff' | 'param' | 'grad'>): boolean {
  return (
    row.lossDiff <= TOLERANCE.loss &&
    Object.values(row.param).every((v) => v <= TOLERANCE.param) &&
    Object.values(row.grad).every((v) => v <= TOLERANCE.grad)
  );
}

export interface EquivalenceRun {
  cfg: Config;
  slides: SlideEntry[];
  ranks: RankApi[];
  tileSpec: TileSourceSpec;
  /** The reference reads tiles itself, in the main context. */
  referenceTiles: TileSource;
  steps: number;
  signal?: AbortSignal;
  onRow?: (row: EquivalenceRow) => void;
  engineOptions?: EngineOptions;
  /** Bound of the every-parameter figures; absent: EVERY_PARAM_TOLERANCE of the backend the run used. */
  everyParamTolerance?: number;
}

/**
 * The reference's side of the every-parameter figures: a second single-graph trainer that, each
 * step, starts from the engine's weights and runs the reference's forward and backward (same
 * slide, tiles, augmentation and dropout), and AdamW instances that apply the reference's update
 * to the engine's weights and AdamW state, with the reference's hyperparameters.
 */
class SameStart {
  private readonly trainer: ReferenceTrainer;
  private readonly enc: Params;
  private readonly agg: Params;
  private readonly encOpt: AdamW;
  private readonly aggOpt: AdamW;
  /** optimizer.accumulateSlides > 1: the reference's gradients of the open group (at the engine's weights, fixed inside a group). */
  private readonly sum = new GradientSum();

  constructor(private readonly cfg: Config, run: EquivalenceRun, private readonly encSpecs: ParamSpec[], private readonly aggSpecs: ParamSpec[]) {
    this.trainer = new ReferenceTrainer(cfg, run.slides, run.referenceTiles, run.engineOptions?.encoderWeights);
    this.enc = createParams(encSpecs, cfg.seed);
    this.agg = createParams(aggSpecs, cfg.seed);
    this.encOpt = new AdamW(encSpecs, this.enc, cfg.optimizer, 'auto', encoderLrScales(encSpecs, cfg.encoder));
    this.aggOpt = new AdamW(aggSpecs, this.agg, cfg.optimizer);
  }

  /** The engine's state before a step: packed weights and both AdamW states. */
  static async capture(engine: Engine) {
    return { enc: await engine.encoderWeights(), agg: await engine.aggregatorWeights(), opt: await engine.optimizerState() };
  }

  /** Step `step` from `start`: the reference's loss, gradients by name, and weights after the update. */
  async step(step: number, start: Awaited<ReturnType<typeof SameStart.capture>>, hyper: { lr: number; weightDecay: number }) {
    writeParams(this.encSpecs, this.trainer.enc, start.enc);
    writeParams(this.aggSpecs, this.trainer.agg, start.agg);
    this.trainer.step = step;
    const out = await this.trainer.trainStep(); // its own AdamW update is not used
    writeParams(this.encSpecs, this.enc, start.enc);
    writeParams(this.aggSpecs, this.agg, start.agg);
    if (!start.opt.encoder) throw new Error('the engine keeps no encoder optimizer state (frozen encoder)');
    this.encOpt.setState(start.opt.encoder);
    this.aggOpt.setState(start.opt.aggregator);
    // Accumulating over slides: inside a group the weights do not move; at its end the group's mean applies.
    const accumulate = this.cfg.optimizer.accumulateSlides;
    let apply = out.grads;
    if (accumulate > 1) {
      this.sum.add(out.grads);
      const total = this.cfg.epochs * this.trainer.sampler.stepsPerEpoch;
      if (!appliesAfter(step, accumulate, total)) return { loss: out.loss, grads: out.grads, enc: unpack(this.encSpecs, start.enc), agg: unpack(this.aggSpecs, start.agg) };
      apply = this.sum.take();
    }
    const asTensors = (specs: ParamSpec[]) => new Map<string, Tensor>(specs.map((sp) => [sp.name, tf.tensor(apply.get(sp.name)!, sp.shape)]));
    const [encGrads, aggGrads] = [asTensors(this.encSpecs), asTensors(this.aggSpecs)];
    // As ReferenceTrainer.trainStep: the aggregator at the schedule's rate, the encoder scaled.
    this.aggOpt.apply(aggGrads, hyper);
    this.encOpt.apply(encGrads, { lr: hyper.lr * this.cfg.optimizer.encoderLrScale, weightDecay: hyper.weightDecay });
    tf.dispose([...encGrads.values(), ...aggGrads.values()]);
    return {
      loss: out.loss, grads: out.grads,
      enc: unpack(this.encSpecs, await readParams(this.encSpecs, this.enc)), agg: unpack(this.aggSpecs, await readParams(this.aggSpecs, this.agg)),
    };
  }

  dispose(): void {
    this.trainer.dispose();
    disposeParams(this.enc);
    disposeParams(this.agg);
    this.encOpt.dispose();
    this.aggOpt.dispose();
  }
}

export async function runEquivalence(run: EquivalenceRun): Promise<EquivalenceRow[]> {
  const { cfg } = run;
  const engine = new Engine(cfg, run.slides, run.ranks, { ...run.engineOptions, keepGradients: true });
  const reference = new ReferenceTrainer(cfg, run.slides, run.referenceTiles, run.engineOptions?.encoderWeights);
  const encSpecs = encoderSpecs(cfg.encoder, cfg.tileSize);
  const layers = trackedLayers(cfg);
  const rows: EquivalenceRow[] = [];
  let same: SameStart | undefined;
  try {
    same = new SameStart(cfg, run, encSpecs, reference.aggSpecs);
    const infos = await engine.init(run.tileSpec);
    const backend = [tf.getBackend(), ...infos.map((r) => r.backend)].every((b) => b === 'cpu') ? 'cpu' : 'webgpu';
    const everyTolerance = run.everyParamTolerance ?? EVERY_PARAM_TOLERANCE[backend];
    for (let i = 0; i < run.steps; i++) {
      if (run.signal?.aborted) throw run.signal.reason;
      const start = await SameStart.capture(engine);
      const stepIndex = reference.step;
      const report = await engine.trainStep(run.signal);
      const t0 = performance.now();
      const ref = await reference.trainStep();
      const referenceMs = performance.now() - t0;
      const encE = unpack(encSpecs, await engine.encoderWeights());
      const encR = unpack(encSpecs, await reference.encoderWeights());
      const aggE = unpack(engine.aggSpecs, await engine.aggregatorWeights());
      const aggR = unpack(reference.aggSpecs, await reference.aggregatorWeights());
      const gradE = unpack(encSpecs, engine.lastEncoderGrad!);
      const param: Record<string, number> = {};
      const grad: Record<string, number> = {};
      for (const layer of layers) {
        const isAgg = layer.startsWith('agg.');
        param[layer] = normalizedL1((isAgg ? aggE : encE).get(layer)!, (isAgg ? aggR : encR).get(layer)!);
        grad[layer] = normalizedL1(isAgg ? engine.lastAggregatorGrads!.get(layer)! : gradE.get(layer)!, ref.grads.get(layer)!);
      }
      // Every parameter, this step alone: the engine's step against the reference's from the same start.
      const sameRef = await same.step(stepIndex, start, engine.hyper(stepIndex));
      const allParam: Record<string, number> = {};
      const allGrad: Record<string, number> = {};
      const zeroGrad = [...encSpecs, ...engine.aggSpecs].filter((sp) => sameRef.grads.get(sp.name)!.every((v) => v === 0)).map((sp) => sp.name);
      for (const sp of encSpecs) {
        allParam[sp.name] = normalizedL1(encE.get(sp.name)!, sameRef.enc.get(sp.name)!);
        allGrad[sp.name] = normalizedL1(gradE.get(sp.name)!, sameRef.grads.get(sp.name)!);
      }
      for (const sp of engine.aggSpecs) {
        const g = engine.lastAggregatorGrads!.get(sp.name);
        if (!g) throw new Error(`the engine kept no gradient of ${sp.name}`);
        allParam[sp.name] = normalizedL1(aggE.get(sp.name)!, sameRef.agg.get(sp.name)!);
        allGrad[sp.name] = normalizedL1(g, sameRef.grads.get(sp.name)!);
      }
      const partial = { ranks: cfg.ranks, step: report.step, lossReference: ref.loss, lossRanks: report.loss, lossDiff: Math.abs(ref.loss - report.loss), param, grad };
      const row: EquivalenceRow = {
        ...partial, pass: rowPasses(partial), stepMs: report.wallMs, referenceMs,
        every: everyParamFigures(backend, everyTolerance, allParam, allGrad, zeroGrad),
      };
      rows.push(row);
      run.onRow?.(row);
    }
  } finally {
    same?.dispose();
    reference.dispose();
    await engine.dispose();
  }
  return rows;
}

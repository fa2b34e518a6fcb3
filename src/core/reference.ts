// The single-graph reference: the same encoder and aggregator trained in ONE variableGrads call
// over all K tiles, with no ranks, no gather, no scatter, no micro-batches, no pseudo-loss. The
// engine must match it (the paper's gradient-equivalence claim).
import { tf, type Tensor } from './tf.ts';
import { attentionDim, featureDim, inputNorm, type Config } from './config.ts';
import { encoderForward, encoderSpecs } from './models/encoder.ts';
import { aggregatorForward, aggregatorSpecs, dropoutMask, HIDDEN, weightedCrossEntropy } from './models/aggregator.ts';
import { createParams, disposeParams, readParams, sizeOf, writeParams, type ParamSpec, type Params } from './params.ts';
import { AdamW } from './optim/adamw.ts';
import { encoderLrScales, trainableNames } from './optim/fine-tune.ts';
import { scheduleAt } from './optim/schedule.ts';
import { appliesAfter, GradientSum } from './optim/accumulate.ts';
import { augmentFor, preprocessTile } from './augment.ts';
import { Sampler, type SlideEntry } from './sampler.ts';
import type { TileSource } from './tiles.ts';

export interface ReferenceStep {
  step: number;
  loss: number;
  /** Gradients of every parameter (encoder and aggregator) by name. */
  grads: Map<string, Float32Array>;
}

export class ReferenceTrainer {
  readonly sampler: Sampler;
  readonly encSpecs: ParamSpec[];
  readonly aggSpecs: ParamSpec[];
  readonly enc: Params;
  readonly agg: Params;
  private encOpt: AdamW;
  private aggOpt: AdamW;
  step = 0;

  private encTrainable: string[];
  /** optimizer.accumulateSlides > 1: the open group's gradients by name. */
  private gradSum = new GradientSum();

  /** encoderWeights: [P] initial encoder weights (pretrained); absent: the seed's random init. */
  constructor(readonly cfg: Config, slides: SlideEntry[], private readonly tiles: TileSource, encoderWeights?: Float32Array) {
    if (cfg.frozenEncoder) throw new Error('the reference trains the encoder; turn frozenEncoder off');
    this.sampler = new Sampler(slides, cfg.seed, cfg.tiles);
    this.encSpecs = encoderSpecs(cfg.encoder, cfg.tileSize);
    this.aggSpecs = aggregatorSpecs(featureDim(cfg.encoder), attentionDim(cfg.aggregator));
    this.enc = createParams(this.encSpecs, cfg.seed);
    if (encoderWeights) writeParams(this.encSpecs, this.enc, encoderWeights);
    this.agg = createParams(this.aggSpecs, cfg.seed);
    const scales = encoderLrScales(this.encSpecs, cfg.encoder);
    this.encTrainable = trainableNames(this.encSpecs, scales);
    this.encOpt = new AdamW(this.encSpecs, this.enc, cfg.optimizer, 'auto', scales);
    this.aggOpt = new AdamW(this.aggSpecs, this.agg, cfg.optimizer);
  }

  async trainStep(): Promise<ReferenceStep> {
    const { cfg } = this;
    const step = this.step;
    const plan = this.sampler.plan(step);
    const k = cfg.tiles;
    const s = cfg.tileSize;
    const pixels = await this.tiles.read(plan.slide.id, plan.tileIndices, s);
    const norm = inputNorm(cfg.encoder);
    const inputs = new Float32Array(k * s * s * 3); // [K, S, S, 3]
    for (let i = 0; i < k; i++) preprocessTile(pixels.subarray(i * s * s * 3, (i + 1) * s * s * 3), s, augmentFor(cfg, step, i), norm, inputs, i * s * s * 3);
    const x = tf.tensor4d(inputs, [k, s, s, 3]);
    const masks: [Tensor, Tensor] = [
      tf.tensor2d(dropoutMask(cfg.seed, step, k, 0, cfg.dropout), [k, HIDDEN]),
      tf.tensor2d(dropoutMask(cfg.seed, step, k, 1, cfg.dropout), [k, HIDDEN]),
    ];
    const trainable = new Set(this.encTrainable);
    const specs = [...this.encSpecs.filter((sp) => trainable.has(sp.name)), ...this.aggSpecs]; // frozen layers: gradient 0
    const varOf = (name: string) => (this.enc.get(name) ?? this.agg.get(name))!;
    const { value, grads } = tf.variableGrads(() => {
      const h = encoderForward(this.enc, cfg.encoder, x); // [K, D]
      const { logits } = aggregatorForward(this.agg, h, masks, cfg.featureNorm);
      return weightedCrossEntropy(logits, plan.slide.label, cfg.positiveWeight) as tf.Scalar;
    }, specs.map((sp) => varOf(sp.name)));
    const byName = new Map<string, Tensor>(specs.map((sp) => [sp.name, grads[varOf(sp.name).name]]));
    const warmup = Math.round(cfg.optimizer.warmupEpochs * this.sampler.stepsPerEpoch);
    const totalSteps = cfg.epochs * this.sampler.stepsPerEpoch;
    const hyper = scheduleAt(cfg.optimizer, step, totalSteps, warmup);
    const out: ReferenceStep = { step, loss: (await value.data())[0], grads: new Map() };
    for (const [name, g] of byName) out.grads.set(name, (await g.data()) as Float32Array);
    for (const sp of this.encSpecs) if (!trainable.has(sp.name)) out.grads.set(sp.name, new Float32Array(sizeOf(sp.shape)));
    const encHyper = { lr: hyper.lr * cfg.optimizer.encoderLrScale, weightDecay: hyper.weightDecay };
    const accumulate = cfg.optimizer.accumulateSlides;
    if (accumulate <= 1) {
      this.aggOpt.apply(new Map(this.aggSpecs.map((sp) => [sp.name, byName.get(sp.name)!])), hyper);
      this.encOpt.apply(new Map(this.encTrainable.map((name) => [name, byName.get(name)!])), encHyper);
    } else {
      // Gradient accumulation over slides: the mean of the group's gradients, applied at its end.
      this.gradSum.add(out.grads);
      if (appliesAfter(step, accumulate, totalSteps)) {
        const meanGrads = this.gradSum.take();
        const shapes = new Map([...this.encSpecs, ...this.aggSpecs].map((sp) => [sp.name, sp.shape]));
        const t = (name: string) => [name, tf.tensor(meanGrads.get(name)!, shapes.get(name)!)] as [string, Tensor];
        const aggGrads = new Map(this.aggSpecs.map((sp) => t(sp.name)));
        const encGrads = new Map(this.encTrainable.map(t));
        this.aggOpt.apply(aggGrads, hyper);
        this.encOpt.apply(encGrads, encHyper);
        tf.dispose([...aggGrads.values(), ...encGrads.values()]);
      }
    }
    tf.dispose([value, x, ...masks, ...Object.values(grads)]);
    this.step += 1;
    return out;
  }

  encoderWeights(): Promise<Float32Array> {
    return readParams(this.encSpecs, this.enc);
  }
  aggregatorWeights(): Promise<Float32Array> {
    return readParams(this.aggSpecs, this.agg);
  }

  dispose(): void {
    disposeParams(this.enc);
    disposeParams(this.agg);
    this.encOpt.dispose();
    this.aggOpt.dispose();
  }
}

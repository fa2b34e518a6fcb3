// The main context of end-to-end training: it holds the aggregator, gathers features from the
// encoder ranks, runs the aggregator forward/loss/backward, scatters dL/dFeatures, sums the
// ranks' encoder gradients and has every replica apply the same update.
import { tf, type Tensor } from './tf.ts';
import { attentionDim, featureDim, type Config } from './config.ts';
import { aggregatorForward, aggregatorGradients, aggregatorSpecs, dropoutMask, HIDDEN } from './models/aggregator.ts';
import { createParams, disposeParams, readParams, writeParams, checksumDrift, type ParamSpec, type Params } from './params.ts';
import { AdamW, type AdamWState } from './optim/adamw.ts';
import { scheduleAt, type Hyper } from './optim/schedule.ts';
import { evalKey, rankSlots, Sampler, sampleTiles, type SlideEntry, type StepPlan } from './sampler.ts';
import type { EncodeResult, RankApi, RankInfo } from './protocol.ts';
import type { TileSourceSpec } from './tiles.ts';
import type { EvalReport, EvalSlide, Phase, PhaseEvent, RankStepReport, StepReport } from './report.ts';
import { rocAuc } from './metrics.ts';
import { encoderSpecs } from './models/encoder.ts';
import { countParams } from './params.ts';
import { createSharedReduce, sharedSum, type SharedReduceBuffers } from './shared-reduce.ts';

export class ReplicaDriftError extends Error {
  constructor(step: number, drift: number) {
    super(`encoder replicas drifted apart at step ${step}: relative checksum difference ${drift.toExponential(2)}`);
    this.name = 'ReplicaDriftError';
  }
}

export interface EngineOptions {
  /** Called at the start and end of every phase; awaiting it pauses training (teaching mode). */
  onPhase?: (e: PhaseEvent) => void | Promise<void>;
  /** Keep the last step's gradients (for equivalence checks). */
  keepGradients?: boolean;
  /** Largest tolerated relative checksum difference between replicas. */
  driftTolerance?: number;
  /**
   * 'shared': ranks sum their gradients in a SharedArrayBuffer (worker ranks only: they block
   * on Atomics.wait). 'star' (default): shares travel to the main context and the sum back.
   */
  reduction?: 'star' | 'shared';
  /** Read the next step's tiles while this step computes (default true). */
  prefetch?: boolean;
  /** [P] initial encoder weights for every replica (pretrained); absent: the seed's random init. */
  encoderWeights?: Float32Array;
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
}

const f32 = (n: number) => n * 4;

export class Engine {
  readonly sampler: Sampler;
  readonly d: number;
  readonly aggSpecs: ParamSpec[];
  private agg: Params;
  private aggOpt: AdamW;
  private infos: RankInfo[] = [];
  private shared?: SharedReduceBuffers;
  private stepIndex = 0;
  /** Frozen encoder: cached features per "slide:tile" (only without augmentation). */
  private featureCache = new Map<string, Float32Array>();
  /** With keepGradients: the last step's summed encoder gradient [P] and aggregator gradients. */
  lastEncoderGrad: Float32Array | null = null;
  lastAggregatorGrads: Map<string, Float32Array> | null = null;

  constructor(
    readonly cfg: Config,
    readonly slides: SlideEntry[],
    readonly ranks: RankApi[],
    private readonly options: EngineOptions = {},
  ) {
    if (ranks.length !== cfg.ranks) throw new Error(`config asks for ${cfg.ranks} ranks but ${ranks.length} were given`);
    this.sampler = new Sampler(slides, cfg.seed, cfg.tiles);
    this.d = featureDim(cfg.encoder);
    this.aggSpecs = aggregatorSpecs(this.d, attentionDim(cfg.aggregator));
    this.agg = createParams(this.aggSpecs, cfg.seed);
    this.aggOpt = new AdamW(this.aggSpecs, this.agg, cfg.optimizer);
  }

  get step(): number {
    return this.stepIndex;
  }
  set step(value: number) {
    this.stepIndex = value;
  }
  get totalSteps(): number {
    return this.cfg.epochs * this.sampler.stepsPerEpoch;
  }
  get rankInfo(): RankInfo[] {
    return this.infos;
  }

  async init(tiles: TileSourceSpec): Promise<RankInfo[]> {
    if (this.options.reduction === 'shared' && !this.cfg.frozenEncoder) {
      this.shared = createSharedReduce(this.ranks.length, countParams(encoderSpecs(this.cfg.encoder, this.cfg.tileSize)));
    }
    const sharedReduce = this.shared;
    const w = this.options.encoderWeights;
    this.infos = await Promise.all(this.ranks.map((r, rank) => r.init({ rank, ranks: this.ranks.length, config: this.cfg, tiles, sharedReduce, weights: w?.slice() })));
    return this.infos;
  }

  hyper(step: number): Hyper {
    const warmup = Math.round(this.cfg.optimizer.warmupEpochs * this.sampler.stepsPerEpoch);
    return scheduleAt(this.cfg.optimizer, step, this.totalSteps, warmup);
  }

  private async phase<T>(step: number, phase: Phase, run: () => Promise<T>, shape?: string, bytes?: number): Promise<[T, number]> {
    await this.options.onPhase?.({ step, phase, at: 'start', shape, bytes });
    const t0 = performance.now();
    const out = await run();
    const ms = performance.now() - t0;
    await this.options.onPhase?.({ step, phase, at: 'end', shape, bytes });
    return [out, ms];
  }

  /** Encodes slots of a plan on every rank and gathers features [K, D] in slot order. */
  private async gather(step: number, slideId: string, tileIndices: Int32Array, train: boolean, signal?: AbortSignal) {
    const k = tileIndices.length;
    const n = this.ranks.length;
    const t0 = performance.now();
    const results: EncodeResult[] = await Promise.all(
      this.ranks.map((r, rank) => {
        const slots = rankSlots(k, rank, n);
        return r.encode({ step, slideId, slots, tileIndices: slots.map((s) => tileIndices[s]), train });
      }),
    );
    const wall = performance.now() - t0;
    throwIfAborted(signal);
    const features = new Float32Array(k * this.d); // [K, D] in slot order
    for (const res of results) {
      res.slots.forEach((slot, i) => features.set(res.features.subarray(i * this.d, (i + 1) * this.d), slot * this.d));
    }
    const slowest = Math.max(...results.map((r) => r.ms.decode + r.ms.forward));
    return { features, results, gatherMs: Math.max(0, wall - slowest) };
  }

  /** One end-to-end training step on the next slide of the sampler. */
  async trainStep(signal?: AbortSignal): Promise<StepReport> {
    throwIfAborted(signal);
    const wall0 = performance.now();
    const step = this.stepIndex;
    const plan: StepPlan = this.sampler.plan(step);
    const { k, d } = { k: this.cfg.tiles, d: this.d };
    const n = this.ranks.length;
    const hyper = this.hyper(step);
    const frozen = this.cfg.frozenEncoder;
    const featShape = `[K=${k}, D=${d}] float32`;
    const main: Partial<Record<Phase, number>> = {};
    const bytes: Partial<Record<Phase, number>> = {};

    // Forward on the ranks, then gather [K, D] features with their slots.
    await this.options.onPhase?.({ step, phase: 'forward', at: 'start' });
    const { features, results, gatherMs } = await this.gatherCached(step, plan, !frozen, signal);
    await this.options.onPhase?.({ step, phase: 'forward', at: 'end' });
    await this.options.onPhase?.({ step, phase: 'gather', at: 'end', shape: featShape, bytes: f32(k * d) });
    main.gather = gatherMs;
    if (this.options.prefetch !== false) this.prefetch(step + 1);
    bytes.gather = f32(k * d) + results.reduce((s, r) => s + r.slots.byteLength, 0);

    // Aggregator forward, loss, backward, update: all in the main context.
    const [agg, aggMs] = await this.phase(step, 'aggregator', async () => this.aggregatorStep(step, plan, features, hyper));
    main.aggregator = aggMs;

    const perRank: RankStepReport[] = results.map((r) => ({ rank: r.rank, tiles: r.slots.length, ms: { ...r.ms }, numTensors: r.numTensors, prefetched: r.prefetched }));
    let drift = 0;
    if (!frozen) {
      throwIfAborted(signal);
      // Scatter dL/dFeatures rows to the ranks that own them; each recomputes and backprops.
      const grads = results.map((res) => {
        const grad = new Float32Array(res.slots.length * d); // [k_r, D]
        res.slots.forEach((slot, i) => grad.set(agg.featureGrad.subarray(slot * d, (slot + 1) * d), i * d));
        return grad;
      });
      bytes.scatter = f32(k * d);
      const checksums = this.shared
        ? await this.backwardShared(step, results.map((r) => r.rank), grads, hyper, main, bytes, perRank, featShape)
        : await this.backwardStar(step, results.map((r) => r.rank), grads, hyper, main, bytes, perRank, featShape);
      main.optimizer = (main.optimizer ?? 0) + agg.optimizerMs;
      for (const c of checksums) drift = Math.max(drift, checksumDrift(c, checksums[0]));
      if (drift > (this.options.driftTolerance ?? 1e-6)) throw new ReplicaDriftError(step, drift);
    } else {
      main.optimizer = agg.optimizerMs;
    }

    this.stepIndex += 1;
    return {
      kind: 'step',
      step,
      epoch: plan.epoch,
      slideId: plan.slide.id,
      label: plan.slide.label,
      loss: agg.loss,
      prob: agg.prob,
      lr: hyper.lr,
      weightDecay: hyper.weightDecay,
      k,
      ranks: n,
      d,
      perRank,
      main,
      bytes,
      mainTensors: tf.memory().numTensors,
      attention: { tileIndices: Array.from(plan.tileIndices), scores: Array.from(agg.scores) },
      replicaDrift: drift,
      wallMs: performance.now() - wall0,
      frozenEncoder: frozen,
      reduction: this.shared ? 'shared' : 'star',
    };
  }

  /** Star reduction: shares to the main context, the sum back to every replica. Returns checksums. */
  private async backwardStar(step: number, ranks: number[], grads: Float32Array[], hyper: Hyper, main: Partial<Record<Phase, number>>, bytes: Partial<Record<Phase, number>>, perRank: RankStepReport[], featShape: string): Promise<Float64Array[]> {
    const n = this.ranks.length;
    const t0 = performance.now();
    const backs = await Promise.all(ranks.map((r, i) => this.ranks[r].backward({ grad: grads[i] })));
    main.scatter = Math.max(0, performance.now() - t0 - Math.max(...backs.map((b) => b.ms.recompute)));
    await this.options.onPhase?.({ step, phase: 'scatter', at: 'end', shape: featShape, bytes: bytes.scatter });
    backs.forEach((b) => (perRank[b.rank].ms.recompute = b.ms.recompute));
    await this.options.onPhase?.({ step, phase: 'recompute', at: 'end' });

    // Reduce: the full encoder gradient is the SUM of the ranks' shares (no 1/N: we sum ourselves).
    const p = backs[0].grads.length;
    const [summed, reduceMs] = await this.phase(step, 'reduce', async () => {
      const sum = new Float32Array(p); // [P]
      for (const b of [...backs].sort((a, c) => a.rank - c.rank)) for (let i = 0; i < p; i++) sum[i] += b.grads[i];
      return sum;
    }, `[P=${p}] float32 x ${n}`, f32(p) * n * 2);
    main.reduce = reduceMs;
    bytes.reduce = f32(p) * n * 2; // shares in, sum out
    if (this.options.keepGradients) this.lastEncoderGrad = summed.slice();

    // Every replica applies the identical update.
    const [applied, optMs] = await this.phase(step, 'optimizer', () =>
      Promise.all(this.ranks.map((r, i) => r.apply({ grads: i === n - 1 ? summed : summed.slice(), lr: hyper.lr, weightDecay: hyper.weightDecay }))),
    );
    main.optimizer = optMs;
    applied.forEach((a) => {
      perRank[a.rank].ms.optimizer = a.ms.optimizer;
      perRank[a.rank].numTensors = a.numTensors;
    });
    return applied.map((a) => a.checksum);
  }

  /** Shared-memory reduction: ranks backprop, sum in a SharedArrayBuffer and update in one call. */
  private async backwardShared(step: number, ranks: number[], grads: Float32Array[], hyper: Hyper, main: Partial<Record<Phase, number>>, bytes: Partial<Record<Phase, number>>, perRank: RankStepReport[], featShape: string): Promise<Float64Array[]> {
    const t0 = performance.now();
    const done = await Promise.all(ranks.map((r, i) => this.ranks[r].backwardApply({ grad: grads[i], lr: hyper.lr, weightDecay: hyper.weightDecay })));
    const slowest = Math.max(...done.map((b) => b.ms.recompute + b.ms.reduce + b.ms.optimizer));
    main.scatter = Math.max(0, performance.now() - t0 - slowest);
    main.reduce = 0; // nothing crosses the main context; the ranks' own reduce times are in perRank
    bytes.reduce = 0;
    for (const phase of ['scatter', 'recompute', 'reduce', 'optimizer'] as const) await this.options.onPhase?.({ step, phase, at: 'end', ...(phase === 'scatter' ? { shape: featShape, bytes: bytes.scatter } : {}) });
    done.forEach((b) => {
      Object.assign(perRank[b.rank].ms, b.ms);
      perRank[b.rank].numTensors = b.numTensors;
    });
    if (this.options.keepGradients) this.lastEncoderGrad = sharedSum(this.shared!).slice();
    return done.map((b) => b.checksum);
  }

  /** Asks every rank to start decoding its tiles of training step `step` (fire and forget). */
  private prefetch(step: number): void {
    if (step >= this.totalSteps || this.cfg.frozenEncoder) return;
    const plan = this.sampler.plan(step);
    const n = this.ranks.length;
    this.ranks.forEach((r, rank) => {
      const slots = rankSlots(plan.tileIndices.length, rank, n);
      r.prefetch({ slideId: plan.slide.id, tileIndices: slots.map((s) => plan.tileIndices[s]) }).catch(() => undefined);
    });
  }

  private async gatherCached(step: number, plan: StepPlan, train: boolean, signal?: AbortSignal) {
    const cacheable = this.cfg.frozenEncoder && !this.cfg.augment.flip && !this.cfg.augment.rot90 && this.cfg.augment.blur === 0;
    if (!cacheable) return this.gather(step, plan.slide.id, plan.tileIndices, train, signal);
    const key = (t: number) => `${plan.slide.id}:${t}`;
    const missing = Array.from(new Set(Array.from(plan.tileIndices).filter((t) => !this.featureCache.has(key(t)))));
    let results: EncodeResult[] = [];
    let gatherMs = 0;
    if (missing.length) {
      const g = await this.gather(step, plan.slide.id, Int32Array.from(missing), false, signal);
      missing.forEach((t, i) => this.featureCache.set(key(t), g.features.slice(i * this.d, (i + 1) * this.d)));
      results = g.results;
      gatherMs = g.gatherMs;
    }
    const features = new Float32Array(plan.tileIndices.length * this.d);
    plan.tileIndices.forEach((t, slot) => features.set(this.featureCache.get(key(t))!, slot * this.d));
    if (!results.length) results = this.ranks.map((_, rank) => ({ rank, slots: new Int32Array(0), features: new Float32Array(0), ms: { decode: 0, forward: 0 }, numTensors: 0, prefetched: false }));
    return { features, results, gatherMs };
  }

  /** features [K, D] -> loss, P(positive), scores [K], dL/dFeatures [K, D]; updates the aggregator. */
  private async aggregatorStep(step: number, plan: StepPlan, features: Float32Array, hyper: Hyper) {
    const k = plan.tileIndices.length;
    const h = tf.tensor2d(features, [k, this.d]); // [K, D] in slot order
    const masks: [Tensor, Tensor] = [
      tf.tensor2d(dropoutMask(this.cfg.seed, step, k, 0, this.cfg.dropout), [k, HIDDEN]),
      tf.tensor2d(dropoutMask(this.cfg.seed, step, k, 1, this.cfg.dropout), [k, HIDDEN]),
    ];
    const out = aggregatorGradients(this.agg, this.aggSpecs, h, plan.slide.label, this.cfg.positiveWeight, masks);
    const probT = tf.tidy(() => tf.softmax(out.logits).reshape([-1]));
    const [loss, scores, prob, featureGrad] = (await Promise.all([out.loss.data(), out.scores.data(), probT.data(), out.featureGrad.data()])) as Float32Array[];
    if (this.options.keepGradients) {
      this.lastAggregatorGrads = new Map();
      for (const [name, g] of out.grads) this.lastAggregatorGrads.set(name, (await g.data()) as Float32Array);
    }
    const t0 = performance.now();
    this.aggOpt.apply(out.grads, hyper);
    const optimizerMs = performance.now() - t0;
    tf.dispose([h, probT, ...masks, out.loss, out.logits, out.scores, out.featureGrad, ...out.grads.values()]);
    return { loss: loss[0], prob: prob[1], scores, featureGrad, optimizerMs };
  }

  /** Slide-level predictions on the validation split (no augmentation, no dropout). */
  async evaluate(signal?: AbortSignal, onSlide?: (done: number, total: number) => void): Promise<EvalReport> {
    const t0 = performance.now();
    const val = this.slides.filter((s) => s.split === 'val' && s.numTiles > 0);
    const slides: EvalSlide[] = [];
    for (const [i, slide] of val.entries()) {
      throwIfAborted(signal);
      const count = this.cfg.evalTiles > 0 ? Math.min(this.cfg.evalTiles, slide.numTiles) : slide.numTiles;
      const tileIndices = count === slide.numTiles ? Int32Array.from({ length: count }, (_, t) => t) : sampleTiles(slide.numTiles, count, this.cfg.seed, evalKey(this.cfg.seed, i));
      const { features } = await this.gather(-1, slide.id, tileIndices, false, signal);
      const out = tf.tidy(() => {
        const o = aggregatorForward(this.agg, tf.tensor2d(features, [count, this.d]), null);
        return [tf.softmax(o.logits).reshape([-1]), o.scores];
      });
      const [p, s] = await Promise.all(out.map((t) => t.data()));
      tf.dispose(out);
      slides.push({ slideId: slide.id, label: slide.label, prob: p[1], attention: { tileIndices: Array.from(tileIndices), scores: Array.from(s) } });
      onSlide?.(i + 1, val.length);
    }
    const auc = rocAuc(slides.map((s) => s.prob), slides.map((s) => s.label));
    return { kind: 'eval', epoch: Math.floor(this.stepIndex / this.sampler.stepsPerEpoch), step: this.stepIndex, slides, auc, wallMs: performance.now() - t0 };
  }

  /** Packed aggregator weights [P_agg]. */
  aggregatorWeights(): Promise<Float32Array> {
    return readParams(this.aggSpecs, this.agg);
  }
  setAggregatorWeights(w: Float32Array): void {
    writeParams(this.aggSpecs, this.agg, w);
  }
  encoderWeights(): Promise<Float32Array> {
    return this.ranks[0].getWeights();
  }
  async setEncoderWeights(w: Float32Array): Promise<void> {
    await Promise.all(this.ranks.map((r) => r.setWeights(w.slice())));
  }

  /** Both optimizers' state (AdamW moments and step counts), so a resumed run loses nothing. */
  async optimizerState(): Promise<{ aggregator: AdamWState; encoder: AdamWState | null }> {
    return { aggregator: await this.aggOpt.getState(), encoder: await this.ranks[0].getOptimizerState() };
  }

  async setOptimizerState(state: { aggregator: AdamWState; encoder: AdamWState | null }): Promise<void> {
    this.aggOpt.setState(state.aggregator);
    const enc = state.encoder;
    if (enc) await Promise.all(this.ranks.map((r) => r.setOptimizerState({ t: enc.t, m: enc.m.slice(), v: enc.v.slice() })));
  }

  async dispose(): Promise<void> {
    disposeParams(this.agg);
    this.aggOpt.dispose();
    await Promise.all(this.ranks.map((r) => r.dispose()));
  }
}

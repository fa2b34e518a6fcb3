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
import { throwIfAborted } from './abort.ts';
import { isRankFault, slideReadFailure, type RankFault } from './faults.ts';
import { appliesAfter, GradientSum } from './optim/accumulate.ts';

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

/** Largest tolerated relative checksum difference between replicas. */
const DRIFT_TOLERANCE = 1e-6;

/** Bytes of n float32 values. */
const float32Bytes = (n: number) => n * 4;

type PhaseMs = Partial<Record<Phase, number>>;
type PhaseBytes = Partial<Record<Phase, number>>;

/** What crossed a thread boundary in a phase (an arrow of the timeline). */
interface Crossing {
  shape: string;
  bytes: number;
}

/** Runs `work` and measures its wall time (ms). */
async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, ms: performance.now() - t0 };
}

/** The main context's share of a call's wall time: what the slowest rank's own work does not explain. */
const beyondSlowest = (wallMs: number, rankMs: number[]) => Math.max(0, wallMs - Math.max(...rankMs));

/**
 * A step's phase events (awaited: teaching mode holds the step at each end), the one way the
 * engine announces phases. `run` wraps work the main context waits for: start, the work, end.
 * `ended` marks a phase that ran inside a rank call: only its end is seen from here.
 */
class StepPhases {
  constructor(
    private readonly step: number,
    private readonly onPhase: EngineOptions['onPhase'],
  ) {}

  async run<T>(phase: Phase, work: () => Promise<T>, crossing?: Crossing): Promise<{ value: T; ms: number }> {
    await this.emit(phase, 'start', crossing);
    const out = await timed(work);
    await this.emit(phase, 'end', crossing);
    return out;
  }

  ended(phase: Phase, crossing?: Crossing): Promise<void> {
    return this.emit(phase, 'end', crossing);
  }

  private async emit(phase: Phase, at: 'start' | 'end', crossing?: Crossing): Promise<void> {
    await this.onPhase?.({ step: this.step, phase, at, ...crossing });
  }
}

/** The backward half of a step as a reduction sees it. */
interface BackwardHalf {
  step: number;
  phases: StepPhases;
  /** [k_r, D] rows of dL/dFeatures per rank (rank order), for the ranks' recompute. */
  grads: { rank: number; grad: Float32Array }[];
  hyper: Hyper;
  /** What the scatter carries ([K, D] float32 in all). */
  scatter: Crossing;
}

/** The aggregator's computing half of a step (Engine.aggregatorGrads): nothing applied yet. */
interface AggregatorHalf {
  loss: number;
  /** P(positive). */
  prob: number;
  /** [K] attention scores in slot order. */
  scores: Float32Array;
  /** [K, D] dL/dFeatures in slot order. */
  featureGrad: Float32Array;
  /** dL/dθ_agg by parameter name, shaped as the parameters; the caller applies, then disposes them. */
  grads: Map<string, Tensor>;
}

/** What a reduction strategy did: the replicas' checksums, main-context ms and bytes per phase, the ranks' own figures. */
interface Reduced {
  checksums: Float64Array[];
  ms: PhaseMs;
  bytes: PhaseBytes;
  ranks: { rank: number; ms: PhaseMs; numTensors: number }[];
}

/** Per rank: its encode figures, then those of its backward half (recompute, reduce, optimizer ms; live tensors after the update). */
function rankReports(encoded: EncodeResult[], after: Reduced['ranks'] = []): RankStepReport[] {
  return encoded.map((r) => {
    const b = after.find((x) => x.rank === r.rank);
    return { rank: r.rank, tiles: r.slots.length, ms: { ...r.ms, ...b?.ms }, numTensors: b?.numTensors ?? r.numTensors, prefetched: r.prefetched };
  });
}

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
  /** Ranks that faulted in a step that still happened (others had applied its update): the recovery restores them before the next step. */
  private lost: RankFault[] = [];
  /** optimizer.accumulateSlides > 1: the open group's gradients (aggregator by name, added only once a step's replicas' half succeeded; encoder as 'enc' [P]). */
  private aggSum = new GradientSum();
  /** Validation slides left out after their tiles could not be read, with the reason. */
  readonly valSetAside = new Map<string, string>();
  private encSum = new GradientSum();

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
  /** The shared-memory reduction's buffers (absent with the star reduction). */
  get sharedReduce(): SharedReduceBuffers | undefined {
    return this.shared;
  }

  async init(tiles: TileSourceSpec): Promise<RankInfo[]> {
    // Accumulating over slides keeps the summed gradient in the main context: star reduction only.
    if (this.options.reduction === 'shared' && !this.cfg.frozenEncoder && this.cfg.optimizer.accumulateSlides <= 1) {
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

  /** Encodes slots of a plan on every rank and gathers features [K, D] in slot order. */
  private async gather(step: number, slideId: string, tileIndices: Int32Array, train: boolean, signal?: AbortSignal) {
    throwIfAborted(signal); // a stop or pause that came before the encode requests: the ranks' cancel would find nothing to cut
    const k = tileIndices.length;
    const n = this.ranks.length;
    const { value: results, ms: wall } = await timed(() =>
      Promise.all(
        this.ranks.map((r, rank) => {
          const slots = rankSlots(k, rank, n);
          return r.encode({ step, slideId, slots, tileIndices: slots.map((s) => tileIndices[s]), train });
        }),
      ),
    );
    throwIfAborted(signal);
    const features = new Float32Array(k * this.d); // [K, D] in slot order
    for (const res of results) {
      res.slots.forEach((slot, i) => features.set(res.features.subarray(i * this.d, (i + 1) * this.d), slot * this.d));
    }
    return { features, results, gatherMs: beyondSlowest(wall, results.map((r) => r.ms.decode + r.ms.forward)) };
  }

  /**
   * One end-to-end training step on the next slide of the sampler (README, "One training step").
   * A rank fault (RankCrashed, DeviceLost) before the replicas' update abandons the step: the step
   * index stays, and the step can be retried once the rank is restored (src/lab/recovery.ts). The
   * aggregator has not moved then: its gradients are computed before the scatter but applied
   * (AdamW, or added to the accumulation group's sum) only once the replicas' half has succeeded,
   * so nothing is read back from its device to put it back; the abandoned step's gradients are
   * disposed. Only the open group's encoder sum (a JS array; with accumulateSlides > 1) is
   * snapshotted and restored, so a retry does not add the slide twice.
   */
  async trainStep(signal?: AbortSignal): Promise<StepReport> {
    const encSum = this.encSum.snapshot(); // [P] 'enc' with accumulation; empty otherwise
    try {
      return await this.runStep(signal);
    } catch (e) {
      if (isRankFault(e)) this.encSum.restore(encSum);
      throw e;
    }
  }

  private async runStep(signal?: AbortSignal): Promise<StepReport> {
    throwIfAborted(signal);
    const wall0 = performance.now();
    const step = this.stepIndex;
    const plan: StepPlan = this.sampler.plan(step);
    const { k, d } = { k: this.cfg.tiles, d: this.d };
    const hyper = this.hyper(step);
    const frozen = this.cfg.frozenEncoder;
    const phases = new StepPhases(step, this.options.onPhase);
    // [K, D] float32 crosses twice: features gathered, then dL/dFeatures scattered.
    const featureRows: Crossing = { shape: `[K=${k}, D=${d}] float32`, bytes: float32Bytes(k * d) };

    // Ranks: decode and forward their slots. Main: gather the features [K, D] in slot order.
    const { value: encoded } = await phases.run('forward', () => this.gatherCached(step, plan, !frozen, signal));
    await phases.ended('gather', featureRows);
    const ms: PhaseMs = { gather: encoded.gatherMs }; // the main context's critical path
    if (this.options.prefetch !== false) this.prefetch(step + 1);
    const bytes: PhaseBytes = { gather: featureRows.bytes + encoded.results.reduce((s, r) => s + r.slots.byteLength, 0) };

    // Main: aggregator forward and loss, backward to dL/dθ_agg and dL/dFeatures [K, D] (not applied yet).
    const held: { grads?: Map<string, Tensor> } = {}; // dL/dθ_agg, held until the replicas' half is in; disposed below either way
    let reduced: Reduced | null = null;
    let aggOptimizerMs: number;
    let agg: AggregatorHalf;
    try {
      const computed = await phases.run('aggregator', async () => {
        const out = await this.aggregatorGrads(step, plan, encoded.features);
        held.grads = out.grads;
        return out;
      });
      agg = computed.value;
      ms.aggregator = computed.ms;

      // Scatter rows of dL/dFeatures, ranks recompute their share of dL/dθ_enc, reduce (sum), every replica: AdamW.
      if (!frozen) {
        throwIfAborted(signal);
        const grads = encoded.results.map((res) => ({ rank: res.rank, grad: this.rowsOf(agg.featureGrad, res.slots) }));
        const half: BackwardHalf = { step, phases, grads, hyper, scatter: featureRows };
        reduced = await (this.shared ? this.reduceShared(half) : this.reduceStar(half));
        Object.assign(ms, reduced.ms);
        Object.assign(bytes, reduced.bytes);
      }
      // The replicas' half succeeded (or there is none): only now does the aggregator move. A fault
      // before this point threw past it and left the aggregator as it was before the step.
      aggOptimizerMs = await this.applyAggregator(step, agg.grads, hyper);
    } finally {
      if (held.grads) tf.dispose([...held.grads.values()]);
    }
    ms.optimizer = (reduced?.ms.optimizer ?? 0) + aggOptimizerMs;
    // Check the replicas' checksums (fail loudly on drift).
    const drift = reduced ? this.checkReplicas(step, reduced.checksums) : 0;

    this.stepIndex += 1;
    return {
      kind: 'step', step, epoch: plan.epoch, slideId: plan.slide.id, label: plan.slide.label,
      loss: agg.loss, prob: agg.prob, lr: hyper.lr, weightDecay: hyper.weightDecay, k, ranks: this.ranks.length, d,
      perRank: rankReports(encoded.results, reduced?.ranks), main: ms, bytes, mainTensors: tf.memory().numTensors,
      attention: { tileIndices: Array.from(plan.tileIndices), scores: Array.from(agg.scores) },
      replicaDrift: drift, wallMs: performance.now() - wall0, frozenEncoder: frozen, reduction: this.shared ? 'shared' : 'star',
    };
  }

  /** [k_r, D] the rows of `featureGrad` [K, D] at `slots`, in their order. */
  private rowsOf(featureGrad: Float32Array, slots: Int32Array): Float32Array {
    const d = this.d;
    const rows = new Float32Array(slots.length * d);
    slots.forEach((slot, i) => rows.set(featureGrad.subarray(slot * d, (slot + 1) * d), i * d));
    return rows;
  }

  /** The largest relative checksum difference between replicas; throws above the tolerance. */
  private checkReplicas(step: number, checksums: Float64Array[]): number {
    let drift = 0;
    for (const c of checksums) drift = Math.max(drift, checksumDrift(c, checksums[0]));
    if (drift > DRIFT_TOLERANCE) throw new ReplicaDriftError(step, drift);
    return drift;
  }

  /** Star reduction: shares to the main context, the sum back to every replica. */
  private async reduceStar({ step, phases, grads, hyper, scatter }: BackwardHalf): Promise<Reduced> {
    const n = this.ranks.length;
    const backward = await timed(() => Promise.all(grads.map(({ rank, grad }) => this.ranks[rank].backward({ grad }))));
    const backs = backward.value;
    const scatterMs = beyondSlowest(backward.ms, backs.map((b) => b.ms.recompute));
    await phases.ended('scatter', scatter);
    await phases.ended('recompute');

    // Reduce: the full encoder gradient is the SUM of the ranks' shares (no 1/N: we sum ourselves).
    const p = backs[0].grads.length;
    const shares: Crossing = { shape: `[P=${p}] float32 x ${n}`, bytes: float32Bytes(p) * n * 2 }; // shares in, sum out
    const reduce = await phases.run('reduce', async () => {
      const sum = new Float32Array(p); // [P]
      for (const b of [...backs].sort((a, c) => a.rank - c.rank)) for (let i = 0; i < p; i++) sum[i] += b.grads[i];
      return sum;
    }, shares);
    let summed = reduce.value;
    if (this.options.keepGradients) this.lastEncoderGrad = summed.slice();
    const accumulate = this.cfg.optimizer.accumulateSlides;
    if (accumulate > 1) {
      // Accumulate over slides: no update inside a group (the replicas stay as they are); at its end the mean.
      this.encSum.add(new Map([['enc', summed]]));
      if (!appliesAfter(step, accumulate, this.totalSteps)) {
        const recomputeOnly = new Map(backs.map((b) => [b.rank, b.ms.recompute]));
        return {
          checksums: [],
          ms: { scatter: scatterMs, reduce: reduce.ms, optimizer: 0 },
          bytes: { scatter: scatter.bytes, reduce: shares.bytes },
          ranks: backs.map((b) => ({ rank: b.rank, ms: { recompute: recomputeOnly.get(b.rank) }, numTensors: b.numTensors })),
        };
      }
      summed = this.encSum.take().get('enc')! as Float32Array<ArrayBuffer>;
    }

    // Every replica applies the identical update.
    const update = await phases.run('optimizer', () => this.applyEverywhere(summed, hyper));
    const recompute = new Map(backs.map((b) => [b.rank, b.ms.recompute]));
    return {
      checksums: update.value.map((a) => a.checksum),
      ms: { scatter: scatterMs, reduce: reduce.ms, optimizer: update.ms },
      bytes: { scatter: scatter.bytes, reduce: shares.bytes },
      ranks: update.value.map((a) => ({ rank: a.rank, ms: { recompute: recompute.get(a.rank), optimizer: a.ms.optimizer }, numTensors: a.numTensors })),
    };
  }

  /**
   * Every replica applies the summed gradient [P]. A replica that faults meanwhile (its worker
   * died, its device was lost) once another has applied it does not undo the step: it is noted in
   * `lost` and restored from a replica that applied it (takeLostRanks). Any other failure throws.
   */
  private applyEverywhere(summed: Float32Array, hyper: Hyper) {
    const n = this.ranks.length;
    return this.updated(this.ranks.map((r, i) => r.apply({ grads: i === n - 1 ? summed : summed.slice(), lr: hyper.lr, weightDecay: hyper.weightDecay })));
  }

  /** The replicas' update calls (rank order): their results once all settle; faults after another applied the update go to `lost`. */
  private async updated<T>(calls: Promise<T>[]): Promise<T[]> {
    const settled = await Promise.allSettled(calls);
    const failed = settled.flatMap((s, rank) => (s.status === 'rejected' ? [{ rank, error: s.reason as unknown }] : []));
    const applied = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    // None applied: the step is abandoned, and a fault (not the others' barrier timeouts it caused) says why.
    if (failed.length && (!applied.length || failed.some((f) => !isRankFault(f.error)))) throw (failed.find((f) => isRankFault(f.error)) ?? failed[0]).error;
    this.lost.push(...failed.map((f) => f.error as RankFault));
    return applied;
  }

  /** The faults of ranks lost after the step's update was in elsewhere (the step counts); emptied by the call. */
  takeLostRanks(): RankFault[] {
    const out = this.lost;
    this.lost = [];
    return out;
  }

  /** Shared-memory reduction: ranks backprop, sum in a SharedArrayBuffer and update in one call. */
  private async reduceShared({ phases, grads, hyper, scatter }: BackwardHalf): Promise<Reduced> {
    const call = await timed(() => this.updated(grads.map(({ rank, grad }) => this.ranks[rank].backwardApply({ grad, lr: hyper.lr, weightDecay: hyper.weightDecay }))));
    const done = call.value;
    const scatterMs = beyondSlowest(call.ms, done.map((b) => b.ms.recompute + b.ms.reduce + b.ms.optimizer));
    await phases.ended('scatter', scatter);
    for (const phase of ['recompute', 'reduce', 'optimizer'] as const) await phases.ended(phase);
    if (this.options.keepGradients) this.lastEncoderGrad = sharedSum(this.shared!).slice();
    return {
      checksums: done.map((b) => b.checksum),
      // Nothing crosses the main context in the reduce; the ranks' own reduce times are in `ranks`.
      ms: { scatter: scatterMs, reduce: 0 },
      bytes: { scatter: scatter.bytes, reduce: 0 },
      ranks: done.map((b) => ({ rank: b.rank, ms: b.ms, numTensors: b.numTensors })),
    };
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

  /**
   * The aggregator's computing half: features [K, D] -> loss, P(positive), scores [K],
   * dL/dFeatures [K, D] and dL/dθ_agg (tensors the caller owns: applyAggregator, then dispose).
   * The aggregator is not changed.
   */
  private async aggregatorGrads(step: number, plan: StepPlan, features: Float32Array): Promise<AggregatorHalf> {
    const k = plan.tileIndices.length;
    const h = tf.tensor2d(features, [k, this.d]); // [K, D] in slot order
    const masks: [Tensor, Tensor] = [
      tf.tensor2d(dropoutMask(this.cfg.seed, step, k, 0, this.cfg.dropout), [k, HIDDEN]),
      tf.tensor2d(dropoutMask(this.cfg.seed, step, k, 1, this.cfg.dropout), [k, HIDDEN]),
    ];
    const out = aggregatorGradients(this.agg, this.aggSpecs, h, plan.slide.label, this.cfg.positiveWeight, masks, this.cfg.featureNorm);
    const probT = tf.tidy(() => tf.softmax(out.logits).reshape([-1]));
    const [loss, scores, prob, featureGrad] = (await Promise.all([out.loss.data(), out.scores.data(), probT.data(), out.featureGrad.data()])) as Float32Array[];
    if (this.options.keepGradients) {
      this.lastAggregatorGrads = new Map();
      for (const [name, g] of out.grads) this.lastAggregatorGrads.set(name, (await g.data()) as Float32Array);
    }
    tf.dispose([h, probT, ...masks, out.loss, out.logits, out.scores, out.featureGrad]);
    return { loss: loss[0], prob: prob[1], scores, featureGrad, grads: out.grads };
  }

  /**
   * The aggregator's applying half, once the replicas' half succeeded: AdamW with dL/dθ_agg, or
   * with accumulation, add them to the open group's sum and at the group's end apply its mean.
   * `grads` are not disposed here. Returns its wall time (ms), which belongs to the optimizer phase.
   */
  private async applyAggregator(step: number, grads: Map<string, Tensor>, hyper: Hyper): Promise<number> {
    const t0 = performance.now();
    if (this.cfg.optimizer.accumulateSlides <= 1) this.aggOpt.apply(grads, hyper);
    else {
      // Accumulate over slides: add this slide's gradients; at the group's end apply their mean.
      const own = new Map<string, Float32Array>();
      for (const [name, g] of grads) own.set(name, (await g.data()) as Float32Array);
      this.aggSum.add(own);
      if (appliesAfter(step, this.cfg.optimizer.accumulateSlides, this.totalSteps)) {
        const meanGrads = new Map([...this.aggSum.take()].map(([name, g]) => [name, tf.tensor(g, this.agg.get(name)!.shape)] as [string, Tensor]));
        this.aggOpt.apply(meanGrads, hyper);
        tf.dispose([...meanGrads.values()]);
      }
    }
    return performance.now() - t0;
  }

  /** Slide-level predictions on the validation split (no augmentation, no dropout). */
  async evaluate(signal?: AbortSignal, onSlide?: (done: number, total: number) => void): Promise<EvalReport> {
    const t0 = performance.now();
    const val = this.slides.filter((s) => s.split === 'val' && s.numTiles > 0 && !this.valSetAside.has(s.id));
    const slides: EvalSlide[] = [];
    const setAside: { slideId: string; reason: string }[] = [];
    const plans = val.map((slide, i) => {
      const count = this.cfg.evalTiles > 0 ? Math.min(this.cfg.evalTiles, slide.numTiles) : slide.numTiles;
      return { slide, count, tileIndices: count === slide.numTiles ? Int32Array.from({ length: count }, (_, t) => t) : sampleTiles(slide.numTiles, count, this.cfg.seed, evalKey(this.cfg.seed, i)) };
    });
    // Two slides in flight: every rank reads (and encodes) its share of slide i+1's tiles while it
    // encodes slide i and the main context runs the aggregator on it. Evaluation encodes keep no
    // state in the rank, so they may overlap; the training read-ahead stays where it is.
    const encode = (i: number) => {
      const p = this.gather(-1, plans[i].slide.id, plans[i].tileIndices, false, signal);
      p.catch(() => undefined); // awaited below; a failure surfaces there
      return p;
    };
    let next = plans.length ? encode(0) : null;
    for (const [i, { slide, count, tileIndices }] of plans.entries()) {
      throwIfAborted(signal);
      const current = next!;
      next = i + 1 < plans.length ? encode(i + 1) : null;
      let features: Float32Array;
      try {
        ({ features } = await current);
      } catch (e) {
        // A slide whose tiles cannot be read (file gone, tile not decodable) is left out, with its reason; the pass goes on.
        const reason = slideReadFailure(e);
        if (reason === null || signal?.aborted) throw e;
        this.valSetAside.set(slide.id, reason);
        setAside.push({ slideId: slide.id, reason });
        onSlide?.(i + 1, val.length);
        continue;
      }
      const out = tf.tidy(() => {
        const o = aggregatorForward(this.agg, tf.tensor2d(features, [count, this.d]), null, this.cfg.featureNorm);
        return [tf.softmax(o.logits).reshape([-1]), o.scores];
      });
      const [p, s] = await Promise.all(out.map((t) => t.data()));
      tf.dispose(out);
      slides.push({ slideId: slide.id, label: slide.label, prob: p[1], attention: { tileIndices: Array.from(tileIndices), scores: Array.from(s) } });
      onSlide?.(i + 1, val.length);
    }
    const auc = rocAuc(slides.map((s) => s.prob), slides.map((s) => s.label));
    return { kind: 'eval', epoch: this.stepIndex / this.sampler.stepsPerEpoch, step: this.stepIndex, slides, auc, wallMs: performance.now() - t0, ...(setAside.length ? { setAside } : {}) };
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

// One encoder replica ("rank"). The same code runs in-process, in a Web Worker and in a Node
// worker_threads worker; the runtime injects how to set up the tfjs backend and read tiles.
import { tf, type Tensor } from './tf.ts';
import { featureDim, inputNorm, type Config } from './config.ts';
import { encoderForward, encoderSpecs } from './models/encoder.ts';
import { checksum, countParams, createParams, disposeParams, packTensors, readParams, unpack, writeParams, type ParamSpec, type Params } from './params.ts';
import { AdamW } from './optim/adamw.ts';
import { encoderLrScales, trainableNames } from './optim/fine-tune.ts';
import { augmentFor, NO_AUGMENT, preprocessTile, type InputNorm, type TileAugment } from './augment.ts';
import type { TileSource, TileSourceSpec } from './tiles.ts';
import type { PrefetchRequest, ApplyRequest, ApplyResult, BackendInfo, BackwardApplyRequest, BackwardApplyResult, BackwardRequest, BackwardResult, EncodeRequest, EncodeResult, RankApi, RankInfo, RankInit } from './protocol.ts';
import { reduceShared, type SharedReduceBuffers } from './shared-reduce.ts';
import { abortError, throwIfAborted } from './abort.ts';

export interface RankRuntime {
  /** Selects the tfjs backend (own WebGPU adapter and device where possible). */
  setupBackend(preference: Config['backend']): Promise<BackendInfo>;
  makeTileSource(spec: TileSourceSpec): TileSource;
  name: string;
}

/** Encodes inputs [n, S, S, 3] in fixed micro-batches of m rows (the last one zero-padded). */
export function microBatches(n: number, m: number): { start: number; count: number }[] {
  const out = [];
  for (let start = 0; start < n; start += m) out.push({ start, count: Math.min(m, n - start) });
  return out;
}

/**
 * A padded [m, S, S, 3] float batch from rows [start, start+count) of the step's tiles: each row
 * augmented and normalised here, per micro-batch, from its RGB bytes. The rank keeps only the bytes
 * (1 B per value, not 4) between the encode and the recompute; both build the same batch, bit for bit.
 */
function batchTensor(tiles: StepTiles, start: number, count: number, m: number, s: number, norm: InputNorm): Tensor {
  const row = s * s * 3;
  const buf = new Float32Array(m * row); // rows >= count stay zero (padding)
  for (let i = 0; i < count; i++) preprocessTile(tiles.pixels.subarray((start + i) * row, (start + i + 1) * row), s, tiles.augs[start + i], norm, buf, i * row);
  return tf.tensor4d(buf, [m, s, s, 3]);
}

/** One step's tiles on a rank: RGB bytes [k_r, S, S, 3] and each slot's augmentation. */
interface StepTiles {
  pixels: Uint8Array;
  augs: TileAugment[];
}

const aheadKey = (r: { slideId: string; tileIndices: Int32Array }) => `${r.slideId}|${r.tileIndices.join(',')}`;

export class Rank implements RankApi {
  private cfg!: Config;
  private rank = 0;
  private specs: ParamSpec[] = [];
  private params: Params = new Map();
  private optimizer?: AdamW;
  /** Names of the parameters that train (all but frozen layers), in spec order. */
  private trainable: string[] = [];
  private tiles?: TileSource;
  /** The current step's tiles (bytes + augmentations), kept for the recompute. */
  private inputs: StepTiles | null = null;
  private shared?: SharedReduceBuffers;
  /** Tiles being read ahead: key "slide|i,j,..." -> [n, S, S, 3] RGB bytes. */
  private ahead: { key: string; pixels: Promise<Uint8Array> } | null = null;
  /** Aborts the reads and the computation in flight (cancel()); replaced by a fresh one after each cancel. */
  private inflight = new AbortController();

  constructor(private readonly runtime: RankRuntime) {}

  async init(init: RankInit): Promise<RankInfo> {
    await this.dispose();
    this.cfg = init.config;
    this.rank = init.rank;
    const backend = await this.runtime.setupBackend(init.config.backend);
    this.specs = encoderSpecs(init.config.encoder, init.config.tileSize);
    this.params = createParams(this.specs, init.config.seed, !init.config.frozenEncoder);
    if (init.weights) writeParams(this.specs, this.params, init.weights); // pretrained (or reset) weights [P]
    const scales = encoderLrScales(this.specs, init.config.encoder);
    this.trainable = trainableNames(this.specs, scales);
    if (!this.trainable.length && !init.config.frozenEncoder) throw new Error(`encoder.freezeBlocks=${init.config.encoder.freezeBlocks} freezes every encoder layer: turn on frozenEncoder instead`);
    if (!init.config.frozenEncoder) this.optimizer = new AdamW(this.specs, this.params, init.config.optimizer, 'auto', scales);
    this.tiles = this.runtime.makeTileSource(init.tiles);
    this.shared = init.sharedReduce;
    return { ...backend, rank: init.rank, params: countParams(this.specs), runtime: this.runtime.name };
  }

  async encode(req: EncodeRequest): Promise<EncodeResult> {
    const { tileSize: s, microBatch: m } = this.cfg;
    const d = featureDim(this.cfg.encoder);
    const n = req.slots.length;
    let t0 = performance.now();
    const signal = this.inflight.signal;
    const key = aheadKey(req);
    const prefetched = this.ahead?.key === key;
    const pixels = await untilAborted(prefetched ? this.ahead!.pixels : this.tiles!.read(req.slideId, req.tileIndices, s, signal), signal);
    if (prefetched) this.ahead = null;
    const inputs: StepTiles = { pixels, augs: Array.from(req.slots, (slot) => (req.train ? augmentFor(this.cfg, req.step, slot) : NO_AUGMENT)) };
    const decode = performance.now() - t0; // reading (or awaiting the read-ahead); augmentation runs per micro-batch below
    t0 = performance.now();
    const features = new Float32Array(n * d);
    for (const { start, count } of microBatches(n, m)) {
      throwIfAborted(signal); // cancel() lands between micro-batches
      const f = tf.tidy(() => encoderForward(this.params, this.cfg.encoder, batchTensor(inputs, start, count, m, s, inputNorm(this.cfg.encoder))));
      const data = (await f.data()) as Float32Array; // [m, D]
      f.dispose();
      features.set(data.subarray(0, count * d), start * d);
    }
    this.inputs = req.train ? inputs : null;
    return { rank: this.rank, slots: req.slots, features, ms: { decode, forward: performance.now() - t0 }, numTensors: tf.memory().numTensors, prefetched };
  }

  async prefetch(req: PrefetchRequest): Promise<void> {
    if (!req.tileIndices.length) return;
    const pixels = this.tiles!.read(req.slideId, req.tileIndices, this.cfg.tileSize, this.inflight.signal);
    pixels.catch(() => undefined); // a failed read surfaces in the encode that uses it
    this.ahead = { key: aheadKey(req), pixels };
  }

  /**
   * Recomputes the forward pass in micro-batches inside the gradient call with the pseudo-loss
   * sum(features * dL/dFeatures); its gradient is this rank's share of dL/dθ (a VJP).
   */
  async backward(req: BackwardRequest): Promise<BackwardResult> {
    const t0 = performance.now();
    const grads = await this.shareOfGradient(req.grad, true);
    return { rank: this.rank, grads, ms: { recompute: performance.now() - t0 }, numTensors: tf.memory().numTensors };
  }

  /**
   * [P] this rank's share of dL/dθ from dL/dFeatures [k_r, D] of its slots. `cancellable`: cancel()
   * cuts it between micro-batches (not in backwardApply: the other ranks would wait for this one's share).
   */
  private async shareOfGradient(grad: Float32Array, cancellable = false): Promise<Float32Array> {
    if (!this.inputs) throw new Error(`rank ${this.rank}: backward without a training encode`);
    const { tileSize: s, microBatch: m } = this.cfg;
    const d = featureDim(this.cfg.encoder);
    const n = grad.length / d;
    const vars = this.trainable.map((name) => this.params.get(name)!); // frozen layers get no gradient (it stays 0)
    const signal = this.inflight.signal;
    const acc = new Map<string, Tensor>(this.specs.map((sp) => [sp.name, tf.zeros(sp.shape)]));
    for (const { start, count } of microBatches(n, m)) {
      if (cancellable && signal.aborted) {
        tf.dispose([...acc.values()]);
        throwIfAborted(signal);
      }
      const x = batchTensor(this.inputs, start, count, m, s, inputNorm(this.cfg.encoder));
      const dyBuf = new Float32Array(m * d); // padded rows carry zero gradient
      dyBuf.set(grad.subarray(start * d, (start + count) * d));
      const dy = tf.tensor2d(dyBuf, [m, d]);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(encoderForward(this.params, this.cfg.encoder, x), dy)) as tf.Scalar, vars);
      for (const name of this.trainable) {
        const prev = acc.get(name)!;
        acc.set(name, prev.add(grads[this.params.get(name)!.name]));
        prev.dispose();
      }
      tf.dispose([value, x, dy, ...Object.values(grads)]);
    }
    const grads = await packTensors(this.specs, acc);
    tf.dispose([...acc.values()]);
    this.inputs = null;
    return grads;
  }

  async apply(req: ApplyRequest): Promise<ApplyResult> {
    const t0 = performance.now();
    const sum = await this.update(req.grads, req.lr, req.weightDecay);
    return { rank: this.rank, checksum: sum, ms: { optimizer: performance.now() - t0 }, numTensors: tf.memory().numTensors };
  }

  async backwardApply(req: BackwardApplyRequest): Promise<BackwardApplyResult> {
    if (!this.shared) throw new Error(`rank ${this.rank}: no shared-memory reduction was set up at init`);
    let t0 = performance.now();
    const share = await this.shareOfGradient(req.grad);
    const recompute = performance.now() - t0;
    t0 = performance.now();
    const summed = reduceShared(this.shared, this.rank, share);
    const reduce = performance.now() - t0;
    t0 = performance.now();
    const sum = await this.update(summed, req.lr, req.weightDecay);
    return { rank: this.rank, checksum: sum, ms: { recompute, reduce, optimizer: performance.now() - t0 }, numTensors: tf.memory().numTensors };
  }

  /** Applies the summed gradient [P]; returns the replica checksum. */
  private async update(summed: Float32Array, lr: number, weightDecay: number): Promise<Float64Array> {
    if (!this.optimizer) throw new Error(`rank ${this.rank}: the encoder is frozen`);
    const grads = new Map<string, Tensor>();
    for (const [name, values] of unpack(this.specs, summed)) grads.set(name, tf.tensor(values, this.params.get(name)!.shape));
    this.optimizer.apply(grads, { lr: lr * this.cfg.optimizer.encoderLrScale, weightDecay });
    tf.dispose([...grads.values()]);
    return checksum(this.specs, this.params);
  }

  async getWeights(): Promise<Float32Array> {
    return readParams(this.specs, this.params);
  }

  async setWeights(weights: Float32Array): Promise<void> {
    writeParams(this.specs, this.params, weights);
  }

  async getOptimizerState() {
    return this.optimizer ? this.optimizer.getState() : null;
  }

  async setOptimizerState(state: Parameters<AdamW['setState']>[0]): Promise<void> {
    if (!this.optimizer) throw new Error(`rank ${this.rank}: the encoder is frozen and has no optimizer state`);
    this.optimizer.setState(state);
  }

  /**
   * Stops this rank's tile reads (and decodes) and its encode or recompute in flight: the call
   * waiting on them rejects with an AbortError at its next micro-batch; the read-ahead is dropped.
   * The weights and the optimizer are untouched (an update is never cut), so the rank serves the
   * next call as before.
   */
  async cancel(): Promise<void> {
    this.inflight.abort(abortError(`rank ${this.rank}: aborted (its run was stopped or paused)`));
    this.inflight = new AbortController();
    this.ahead = null;
    this.inputs = null;
  }

  async memory(): Promise<{ numTensors: number; numBytes: number }> {
    const mem = tf.memory();
    return { numTensors: mem.numTensors, numBytes: mem.numBytes };
  }

  async dispose(): Promise<void> {
    disposeParams(this.params);
    this.params = new Map();
    this.optimizer?.dispose();
    this.optimizer = undefined;
    this.tiles?.dispose?.();
    this.inputs = null;
    this.ahead = null;
  }
}

/** `work`, or a rejection with the signal's reason as soon as it aborts (a read that ignores its signal must not hold the call). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason ?? abortError());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

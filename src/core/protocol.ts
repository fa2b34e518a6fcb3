// The rank protocol: what crosses between the main context and an encoder rank. Plain data
// and typed arrays only, so it works in-process, over Web Workers and over worker_threads.
// Every Float32Array here is transferred, never copied, by the transports.
import type { Config } from './config.ts';
import type { TileSourceSpec } from './tiles.ts';
import type { SharedReduceBuffers } from './shared-reduce.ts';
import type { AdamWState } from './optim/adamw.ts';
import type { TestFault } from './faults.ts';

export type BackendName = 'webgpu' | 'cpu';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

export interface BackendInfo {
  backend: BackendName;
  adapter: AdapterInfo | null;
  /** Why the rank is not on WebGPU, when it is not (shown to the user). */
  fallbackReason?: string;
  /** Training kernels in use: Slide Lab's (tiled WGSL on webgpu, plain-array filter gradient on cpu) or tfjs's stock ones. */
  kernels?: 'ours' | 'stock';
}

export interface RankInit {
  rank: number;
  ranks: number;
  config: Config;
  tiles: TileSourceSpec;
  /** Shared-memory gradient reduction between the ranks (absent: the star reduction through the main context). */
  sharedReduce?: SharedReduceBuffers;
  /** [P] initial encoder weights in spec order (pretrained, imported); absent: the seed's random init. */
  weights?: Float32Array;
  /** Tests only: a fault the rank's worker injects into itself (src/transport/expose.ts honours it). */
  testFault?: TestFault;
}

export interface RankInfo extends BackendInfo {
  rank: number;
  /** Encoder parameter count P (length of packed gradients). */
  params: number;
  runtime: string;
}

export interface EncodeRequest {
  step: number;
  slideId: string;
  /** [k_r] slots (positions 0..K-1 in the step's tile list) owned by this rank. */
  slots: Int32Array;
  /** [k_r] slide tile index for each slot. */
  tileIndices: Int32Array;
  /** Training: augment and keep inputs for the recompute. Evaluation: neither. */
  train: boolean;
}

/** Tiles of a coming step to read and decode ahead, while the current step computes. */
export interface PrefetchRequest {
  slideId: string;
  tileIndices: Int32Array;
}

export interface EncodeResult {
  rank: number;
  slots: Int32Array;
  /** [k_r, D] features, row i for slots[i]. */
  features: Float32Array;
  /** decode: time this encode waited for tiles (0 when a prefetch had them ready). */
  ms: { decode: number; forward: number };
  numTensors: number;
  /** Whether the tiles came from a prefetch. */
  prefetched: boolean;
}

export interface BackwardRequest {
  /** [k_r, D] dL/dFeatures for this rank's slots, in the order of its EncodeResult. */
  grad: Float32Array;
}

export interface BackwardResult {
  rank: number;
  /** [P] this rank's share of dL/dθ_encoder, parameters packed in spec order. */
  grads: Float32Array;
  ms: { recompute: number };
  numTensors: number;
}

export interface ApplyRequest {
  /** [P] encoder gradient summed over all ranks. */
  grads: Float32Array;
  lr: number;
  weightDecay: number;
}

export interface ApplyResult {
  rank: number;
  /** Replica checksum after the update (see params.checksum). */
  checksum: Float64Array;
  ms: { optimizer: number };
  numTensors: number;
}

/** Backward, shared-memory reduction and update in one call (no gradient crosses to the main context). */
export interface BackwardApplyRequest extends BackwardRequest {
  lr: number;
  weightDecay: number;
}

export interface BackwardApplyResult {
  rank: number;
  checksum: Float64Array;
  ms: { recompute: number; reduce: number; optimizer: number };
  numTensors: number;
}

/** The API every rank implements, whatever carries it. All methods are async. */
export interface RankApi {
  init(init: RankInit): Promise<RankInfo>;
  encode(req: EncodeRequest): Promise<EncodeResult>;
  /** Starts reading tiles for a later encode of the same slide and tiles; resolves at once. */
  prefetch(req: PrefetchRequest): Promise<void>;
  backward(req: BackwardRequest): Promise<BackwardResult>;
  apply(req: ApplyRequest): Promise<ApplyResult>;
  backwardApply(req: BackwardApplyRequest): Promise<BackwardApplyResult>;
  /** Packed encoder weights [P]. */
  getWeights(): Promise<Float32Array>;
  setWeights(weights: Float32Array): Promise<void>;
  /** The encoder optimizer's state (null with a frozen encoder), for checkpoints. */
  getOptimizerState(): Promise<AdamWState | null>;
  setOptimizerState(state: AdamWState): Promise<void>;
  memory(): Promise<{ numTensors: number; numBytes: number }>;
  /** Stops the rank's reads, decodes and encode/recompute in flight (their call rejects with an AbortError); weights untouched. */
  cancel(): Promise<void>;
  dispose(): Promise<void>;
}

/** Every method of RankApi, once: the transports, guards, pools and test doubles are built from this list. */
export const RANK_METHODS = ['init', 'encode', 'prefetch', 'backward', 'apply', 'backwardApply', 'getWeights', 'setWeights', 'getOptimizerState', 'setOptimizerState', 'memory', 'cancel', 'dispose'] as const satisfies readonly (keyof RankApi)[];

export type RankMethod = (typeof RANK_METHODS)[number];

/** Compile-time check that RANK_METHODS names every method of RankApi (a method left out is named in the error). */
type Missing = Exclude<keyof RankApi, RankMethod>;
export type RankMethodsCoverRankApi = [Missing] extends [never] ? true : { missingFromRankMethods: Missing };
const coversRankApi: RankMethodsCoverRankApi = true;

/**
 * A RankApi whose every method is `call(method, arg)`: the one way to wrap a rank (transfer,
 * crash detection, timeouts, delegation) without listing its methods again.
 */
export function rankFrom(call: (method: RankMethod, arg: unknown) => Promise<unknown>): RankApi {
  const out: Record<string, unknown> = {};
  for (const method of RANK_METHODS) out[method] = (arg?: unknown) => call(method, arg);
  return out as unknown as RankApi;
}

/** A rank that forwards every call to `rank`, except the methods in `over`. */
export function delegateRank(rank: RankApi, over: Partial<RankApi> = {}): RankApi {
  return { ...rankFrom((method, arg) => callRank(rank, method, arg)), ...over };
}

/** Calls `method` of `rank` with its one argument (or none). */
export function callRank(rank: RankApi, method: RankMethod, arg?: unknown): Promise<unknown> {
  return (rank[method] as (a?: unknown) => Promise<unknown>).call(rank, arg);
}

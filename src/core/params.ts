// Named parameters: specs, deterministic initialisation from the seed, and flat packing so a
// gradient or a weight set crosses a thread boundary as one Float32Array.
import { tf, type Variable } from './tf.ts';
import { Rng, Stream, stringKey } from './rng.ts';
import { normalizedL1 } from './metrics.ts';

/** 'normal02': normal with std 0.02 (ViT weights, tokens, position embeddings); 'fill': every value `fill`. */
export type Init = 'he' | 'xavier' | 'zeros' | 'ones' | 'normal02' | 'fill';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
  /** The value of every entry when init is 'fill' (LayerScale's init_values, e.g. 1e-5). */
  fill?: number;
  /** Weight decay applies (false for biases, norm parameters, tokens and position embeddings). */
  decay: boolean;
  /**
   * Depth of the layer for layer-wise learning-rate decay and freezing: 0 for the stem / patch
   * embedding and tokens, i + 1 for block i, blocks + 1 for the final norm (the MAE convention).
   * Absent: the layer is treated as the top (no decay, never frozen).
   */
  layer?: number;
}

export type Params = Map<string, Variable>;

export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** fan_in and fan_out of a dense [in, out] or conv [kh, kw, in, out] weight. */
function fans(shape: number[]): [number, number] {
  if (shape.length === 2) return [shape[0], shape[1]];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [receptive * shape[shape.length - 2], receptive * shape[shape.length - 1]];
}

/** Initial values, identical in every rank and runtime: a pure function of (seed, name). */
export function initialValues(spec: ParamSpec, seed: number): Float32Array {
  const n = sizeOf(spec.shape);
  const out = new Float32Array(n);
  if (spec.init === 'zeros') return out;
  if (spec.init === 'ones') return out.fill(1);
  if (spec.init === 'fill') return out.fill(spec.fill ?? 0);
  const [fanIn, fanOut] = spec.shape.length >= 2 ? fans(spec.shape) : [spec.shape[0] ?? 1, spec.shape[0] ?? 1];
  const std = spec.init === 'normal02' ? 0.02 : spec.init === 'he' ? Math.sqrt(2 / fanIn) : Math.sqrt(2 / (fanIn + fanOut));
  const rng = new Rng(seed, Stream.init, stringKey(spec.name));
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

export function createParams(specs: readonly ParamSpec[], seed: number, trainable = true): Params {
  const params: Params = new Map();
  for (const spec of specs) {
    params.set(spec.name, variableFrom(tf.tensor(initialValues(spec, seed), spec.shape), trainable, spec.name));
  }
  return params;
}
let uid = 0;

/** A variable initialised from `init`, which is disposed (tf.variable keeps its own reference). */
export function variableFrom(init: tf.Tensor, trainable: boolean, name: string): Variable {
  const v = tf.variable(init, trainable, `${name}#${uid++}`);
  init.dispose();
  return v;
}

export function disposeParams(params: Params): void {
  for (const v of params.values()) v.dispose();
}

export function countParams(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + sizeOf(s.shape), 0);
}

/** Packs tensors in spec order into one Float32Array [P]. */
export async function packTensors(specs: readonly ParamSpec[], tensors: Map<string, tf.Tensor>): Promise<Float32Array> {
  const flat = tf.tidy(() => tf.concat(specs.map((s) => tensors.get(s.name)!.reshape([-1]))));
  const data = (await flat.data()) as Float32Array;
  flat.dispose();
  return data;
}

/** The seed's initial values of every parameter, packed in spec order [P] (what createParams holds). */
export function packInitialValues(specs: readonly ParamSpec[], seed: number): Float32Array {
  const flat = new Float32Array(countParams(specs));
  const views = unpack(specs, flat);
  for (const s of specs) views.get(s.name)!.set(initialValues(s, seed));
  return flat;
}

/** Views of a packed Float32Array [P] per parameter (no copies). */
export function unpack(specs: readonly ParamSpec[], flat: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const s of specs) {
    const n = sizeOf(s.shape);
    out.set(s.name, flat.subarray(offset, offset + n));
    offset += n;
  }
  if (offset !== flat.length) throw new Error(`packed size ${flat.length} does not match the model's ${offset} parameters`);
  return out;
}

export async function readParams(specs: readonly ParamSpec[], params: Params): Promise<Float32Array> {
  return packTensors(specs, params as Map<string, tf.Tensor>);
}

export function writeParams(specs: readonly ParamSpec[], params: Params, flat: Float32Array): void {
  for (const [name, values] of unpack(specs, flat)) {
    const v = params.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
  }
}

/**
 * A cheap replica checksum: per parameter, sum(p) and sum(p * w) with a fixed pseudo-random
 * weight pattern w (so permutations show), computed on the device; one small read-back.
 */
export async function checksum(specs: readonly ParamSpec[], params: Params): Promise<Float64Array> {
  const t = tf.tidy(() => {
    const parts = specs.map((s) => {
      const p = params.get(s.name)!.reshape([-1]);
      const n = p.shape[0];
      const w = tf.sin(tf.range(0, n, 1, 'float32').mul(0.618));
      return tf.stack([p.sum(), p.mul(w).sum()]);
    });
    return tf.stack(parts);
  });
  const data = await t.data();
  t.dispose();
  return Float64Array.from(data);
}

/** Relative difference of two checksums; 0 for identical replicas. */
export function checksumDrift(a: Float64Array, b: Float64Array): number {
  return normalizedL1(a, b);
}

// Checks our webgpu kernels against tfjs's cpu backend on random inputs. Shared by the Node test
// (Dawn through the `webgpu` package) and the Chromium test page, so both run the same cases.
import { tf } from '../core/tf.ts';
import { Rng } from '../core/rng.ts';

export interface FilterCase {
  name: string;
  /** x [B, H, W, CI] NHWC. */
  x: [number, number, number, number];
  /** [KH, KW, CI, CO]. */
  filter: [number, number, number, number];
  stride: number;
  pad: 'same' | 'valid';
}

/** Small on purpose (SwiftShader is a CPU): odd sizes, strides 1 and 2, same/valid, batch 1 to 64. */
export const FILTER_CASES: FilterCase[] = [
  { name: 'b1 odd 3x3 s1 same', x: [1, 9, 7, 3], filter: [3, 3, 3, 5], stride: 1, pad: 'same' },
  { name: 'b2 odd 3x3 s2 valid', x: [2, 11, 13, 4], filter: [3, 3, 4, 8], stride: 2, pad: 'valid' },
  { name: 'b3 1x1 s2 same', x: [3, 8, 8, 5], filter: [1, 1, 5, 7], stride: 2, pad: 'same' },
  { name: 'b4 stem 7x7 s2 same', x: [4, 15, 15, 3], filter: [7, 7, 3, 16], stride: 2, pad: 'same' },
  { name: 'b2 M,N > tile, odd, s1 valid', x: [2, 7, 9, 19], filter: [3, 3, 19, 67], stride: 1, pad: 'valid' },
  { name: 'b8 3x3 32->64 s1 same (split-K)', x: [8, 8, 8, 32], filter: [3, 3, 32, 64], stride: 1, pad: 'same' },
  { name: 'b64 3x3 s2 same', x: [64, 6, 6, 8], filter: [3, 3, 8, 16], stride: 2, pad: 'same' },
  { name: 'b64 odd 5x5 s2 valid', x: [64, 9, 9, 3], filter: [5, 5, 3, 9], stride: 2, pad: 'valid' },
];

export interface FilterCheck {
  name: string;
  relL2: number;
  maxAbs: number;
  /** Tensors and backend buffers (dataIds, which include kernel intermediates) left behind. */
  tensorsLeaked: number;
  dataIdsLeaked: number;
  /** shaderKeys of the webgpu programs the checked call ran (empty on a non-webgpu backend). */
  programs: string[];
}

/**
 * Runs `f` while recording the shaderKey of every program the active backend runs, so a check
 * can tell whether our kernel or the stock one (or its fallback) did the work.
 */
export async function withProgramLog<T>(f: () => Promise<T>): Promise<{ value: T; programs: string[] }> {
  const be = tf.backend() as unknown as { runWebGPUProgram?: (p: { shaderKey: string }, ...rest: unknown[]) => unknown };
  const programs: string[] = [];
  const original = be.runWebGPUProgram;
  if (!original) return { value: await f(), programs };
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...rest: unknown[]) {
    programs.push(p.shaderKey);
    return original.call(this, p, ...rest);
  };
  try {
    return { value: await f(), programs };
  } finally {
    delete (be as Record<string, unknown>).runWebGPUProgram; // own property gone: the prototype's method shows through again
    if (be.runWebGPUProgram !== original) be.runWebGPUProgram = original;
  }
}

export function outSize(inSize: number, k: number, stride: number, pad: 'same' | 'valid'): number {
  return pad === 'same' ? Math.ceil(inSize / stride) : Math.ceil((inSize - k + 1) / stride);
}

function randn(n: number, rand: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
  return a;
}

/** Uniform [-1, 1) values for each shape, in order, from one seeded stream. */
function randomInputs(seed: number, shapes: number[][]): Float32Array[] {
  const rng = new Rng(seed, 0x6b65726e);
  const rand = () => rng.next();
  return shapes.map((shape) => randn(shape.reduce((p, q) => p * q, 1), rand));
}

/** Runs one kernel on the active backend on tensors made inside a tidy; returns its values. */
async function runKernelValues(kernelName: string, inputs: () => tf.NamedTensorMap, attrs: object): Promise<Float32Array> {
  const out = tf.tidy(() => tf.engine().runKernel(kernelName, inputs(), attrs as unknown as tf.NamedAttrMap) as tf.Tensor);
  const values = (await out.data()) as Float32Array; // async: Node's webgpu backend cannot read synchronously
  out.dispose();
  return values;
}

/**
 * The harness of every check: runs `run` on the cpu backend and on `backend` (whatever kernel is
 * registered there), recording the programs and the tensors and backend buffers left behind on
 * `backend`, and compares the two results. Leaves `backend` active.
 */
async function checkAgainstCpu(name: string, backend: string, run: () => Promise<Float32Array>): Promise<FilterCheck> {
  await tf.setBackend('cpu');
  const want = await run();
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const idsBefore = tf.engine().backend.numDataIds();
  const { value: got, programs } = await withProgramLog(run);
  const after = tf.memory().numTensors;
  const idsAfter = tf.engine().backend.numDataIds();
  if (got.length !== want.length) throw new Error(`${name}: ${got.length} values, expected ${want.length}`);
  const { relL2, maxAbs } = compare(got, want);
  return { name, relL2, maxAbs, tensorsLeaked: after - before, dataIdsLeaked: idsAfter - idsBefore, programs };
}

/**
 * Runs one case on the cpu backend and on `backend` (whatever kernel is registered there), and
 * returns the relative L2 error ||ours - cpu|| / ||cpu||. Leaves `backend` active.
 */
export async function checkFilterCase(c: FilterCase, seed: number, backend = 'webgpu'): Promise<FilterCheck> {
  const [b, h, w] = c.x;
  const dyShape = [b, outSize(h, c.filter[0], c.stride, c.pad), outSize(w, c.filter[1], c.stride, c.pad), c.filter[3]];
  const [xData, dyData] = randomInputs(seed, [c.x, dyShape]);
  return checkAgainstCpu(c.name, backend, () => runKernelValues('Conv2DBackpropFilter', () => ({
    x: tf.tensor4d(xData, c.x), dy: tf.tensor(dyData, dyShape),
  }), { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.filter }));
}

export interface InputCase {
  name: string;
  /** dx (= x of the forward conv) [B, H, W, CI] NHWC. */
  x: [number, number, number, number];
  /** [KH, KW, CI, CO]. */
  filter: [number, number, number, number];
  /** One stride for both axes, or [sh, sw]. */
  stride: number | [number, number];
  /** As tfjs passes it: 'same', 'valid', or explicit [[0, 0], [top, bottom], [left, right], [0, 0]]. */
  pad: 'same' | 'valid' | tf.backend_util.ExplicitPadding;
}

/**
 * Small on purpose (SwiftShader is a CPU): odd sizes, strides 1 and 2 (and mixed), same/valid/
 * explicit padding, even and odd kernels, stride classes that receive no tap (1x1 s2), CI and CO
 * beyond one tile, batch 1 to 64 (batch-64 cases tiny spatially).
 */
export const INPUT_CASES: InputCase[] = [
  { name: 'b1 odd 3x3 s1 same', x: [1, 9, 7, 5], filter: [3, 3, 5, 6], stride: 1, pad: 'same' },
  { name: 'b2 odd 3x3 s2 valid', x: [2, 11, 13, 4], filter: [3, 3, 4, 8], stride: 2, pad: 'valid' },
  { name: 'b3 1x1 s2 same (empty classes)', x: [3, 8, 9, 5], filter: [1, 1, 5, 7], stride: 2, pad: 'same' },
  { name: 'b2 odd 5x5 s2 same', x: [2, 13, 11, 6], filter: [5, 5, 6, 12], stride: 2, pad: 'same' },
  { name: 'b4 even 4x4 s2 same', x: [4, 8, 8, 16], filter: [4, 4, 16, 32], stride: 2, pad: 'same' },
  { name: 'b2 N,K > tile, odd, s1 valid', x: [2, 7, 9, 67], filter: [3, 3, 67, 19], stride: 1, pad: 'valid' },
  { name: 'b1 3x3 s2 explicit pad', x: [1, 10, 9, 8], filter: [3, 3, 8, 16], stride: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { name: 'b2 3x3 strides [2,1] same', x: [2, 9, 8, 7], filter: [3, 3, 7, 10], stride: [2, 1], pad: 'same' },
  { name: 'b64 3x3 s2 same', x: [64, 6, 6, 8], filter: [3, 3, 8, 16], stride: 2, pad: 'same' },
  { name: 'b64 odd 5x5 s2 valid', x: [64, 9, 9, 3], filter: [5, 5, 3, 9], stride: 2, pad: 'valid' },
  { name: 'b64 3x3 s1 same', x: [64, 5, 5, 4], filter: [3, 3, 4, 4], stride: 1, pad: 'same' },
];

/** dy's shape for an input-gradient case, as tfjs computes the forward conv's output. */
export function inputCaseDyShape(c: InputCase): [number, number, number, number] {
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.stride, 1, c.pad);
  return [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
}

/** Input-gradient counterpart of checkFilterCase: dx from dy and W, ours (on `backend`) vs cpu. */
export async function checkInputCase(c: InputCase, seed: number, backend = 'webgpu'): Promise<FilterCheck> {
  const dyShape = inputCaseDyShape(c);
  const [dyData, wData] = randomInputs(seed, [dyShape, c.filter]);
  const strides = typeof c.stride === 'number' ? [c.stride, c.stride] : c.stride;
  return checkAgainstCpu(c.name, backend, () => runKernelValues('Conv2DBackpropInput', () => ({
    dy: tf.tensor(dyData, dyShape), filter: tf.tensor4d(wData, c.filter),
  }), { inputShape: c.x, strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined }));
}

/** ||got - want|| / ||want|| and the largest absolute difference. */
export function compare(got: ArrayLike<number>, want: ArrayLike<number>): { relL2: number; maxAbs: number } {
  let diff = 0;
  let norm = 0;
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    diff += d * d;
    norm += want[i] * want[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { relL2: Math.sqrt(diff / norm), maxAbs };
}

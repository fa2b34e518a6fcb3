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
}

export function outSize(inSize: number, k: number, stride: number, pad: 'same' | 'valid'): number {
  return pad === 'same' ? Math.ceil(inSize / stride) : Math.ceil((inSize - k + 1) / stride);
}

function randn(n: number, rand: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
  return a;
}

async function runFilter(c: FilterCase, xData: Float32Array, dyData: Float32Array, dyShape: number[]): Promise<Float32Array> {
  const out = tf.tidy(() => {
    const x = tf.tensor4d(xData, c.x);
    const dy = tf.tensor(dyData, dyShape);
    const out = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.filter,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    return out;
  });
  const values = (await out.data()) as Float32Array; // async: Node's webgpu backend cannot read synchronously
  out.dispose();
  return values;
}

/**
 * Runs one case on the cpu backend and on `backend` (whatever kernel is registered there), and
 * returns the relative L2 error ||ours - cpu|| / ||cpu||. Leaves `backend` active.
 */
export async function checkFilterCase(c: FilterCase, seed: number, backend = 'webgpu'): Promise<FilterCheck> {
  const rng = new Rng(seed, 0x6b65726e);
  const rand = () => rng.next();
  const [b, h, w] = c.x;
  const oh = outSize(h, c.filter[0], c.stride, c.pad);
  const ow = outSize(w, c.filter[1], c.stride, c.pad);
  const dyShape = [b, oh, ow, c.filter[3]];
  const xData = randn(c.x.reduce((p, q) => p * q, 1), rand);
  const dyData = randn(dyShape.reduce((p, q) => p * q, 1), rand);

  await tf.setBackend('cpu');
  const want = await runFilter(c, xData, dyData, dyShape);
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const idsBefore = tf.engine().backend.numDataIds();
  const got = await runFilter(c, xData, dyData, dyShape);
  const after = tf.memory().numTensors;
  const idsAfter = tf.engine().backend.numDataIds();

  let diff = 0;
  let norm = 0;
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    diff += d * d;
    norm += want[i] * want[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  if (got.length !== want.length) throw new Error(`${c.name}: ${got.length} values, expected ${want.length}`);
  return { name: c.name, relL2: Math.sqrt(diff / norm), maxAbs, tensorsLeaked: after - before, dataIdsLeaked: idsAfter - idsBefore };
}

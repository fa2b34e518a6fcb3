// Our cpu kernels against tfjs's stock cpu kernels on random shapes. Conv2DBackpropFilter: odd
// sizes, strides 1 and 2, padding same/valid/explicit, batch 1 and 64, through tf.grad as a model
// uses it. BatchMatMul: every transpose combination, batches, broadcasting, odd sizes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { cpuTrainingKernelsActive, registerCpuTrainingKernels, unregisterCpuTrainingKernels } from './cpu-kernels.ts';

type Shape4 = [number, number, number, number];
const CASES: { name: string; x: Shape4; w: Shape4; stride: number | [number, number]; pad: 'same' | 'valid' | number }[] = [
  { name: 'b1 odd 3x3 s1 same', x: [1, 9, 7, 3], w: [3, 3, 3, 5], stride: 1, pad: 'same' },
  { name: 'b2 odd 3x3 s2 valid', x: [2, 11, 13, 4], w: [3, 3, 4, 6], stride: 2, pad: 'valid' },
  { name: 'b3 7x7 s2 same (stem)', x: [3, 16, 16, 3], w: [7, 7, 3, 8], stride: 2, pad: 'same' },
  { name: 'b2 1x1 s2 same (downsample)', x: [2, 8, 8, 16], w: [1, 1, 16, 32], stride: 2, pad: 'same' },
  { name: 'b2 5x5 strides [2,1] explicit pad 1', x: [2, 10, 9, 4], w: [5, 5, 4, 6], stride: [2, 1], pad: 1 },
  { name: 'b64 3x3 s2 same', x: [64, 8, 8, 3], w: [3, 3, 3, 8], stride: 2, pad: 'same' },
];

const filterGrad = (c: (typeof CASES)[number], i: number) => tf.tidy(() => {
  // ReLU'd input (zeros, as in a network) and a random output gradient dy.
  const x = tf.relu(tf.randomNormal(c.x, 0, 1, 'float32', 10 + i)) as tf.Tensor4D;
  const w0 = tf.randomNormal(c.w, 0, 1, 'float32', 30 + i) as tf.Tensor4D;
  const dy = tf.randomNormal(tf.conv2d(x, w0, c.stride, c.pad).shape, 0, 1, 'float32', 20 + i);
  return tf.grad((w) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, c.stride, c.pad), dy)))(w0); // Conv2DBackpropFilter
});

/**
 * Runs `f` with our cpu kernel `name` registered and counts, by wrapping both in the registry,
 * the calls that reach ours and the calls that reach the stock kernel (which ours falls back to):
 * a registered kernel that never ran, or fell back, shows in the counts.
 */
function countKernelCalls<T>(name: 'Conv2DBackpropFilter' | 'BatchMatMul', f: () => T): { value: T; ours: number; stock: number } {
  unregisterCpuTrainingKernels();
  const stockConfig = tf.getKernel(name, 'cpu')!;
  const counts = { ours: 0, stock: 0 };
  const swap = (kernelFunc: tf.KernelFunc) => {
    tf.unregisterKernel(name, 'cpu');
    tf.registerKernel({ ...stockConfig, kernelFunc });
  };
  swap((args) => { counts.stock++; return stockConfig.kernelFunc(args); });
  registerCpuTrainingKernels(); // ours, with the counting stock kernel as its fallback
  const oursConfig = tf.getKernel(name, 'cpu')!;
  swap((args) => { counts.ours++; return oursConfig.kernelFunc(args); });
  try {
    return { value: f(), ...counts };
  } finally {
    unregisterCpuTrainingKernels(); // puts the counting stock kernel back...
    swap(stockConfig.kernelFunc); // ...and then the real one
  }
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => unregisterCpuTrainingKernels());

describe('Conv2DBackpropFilter on the cpu backend (ours) vs tfjs stock', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, i) => {
    unregisterCpuTrainingKernels();
    const stock = filterGrad(c, i);
    expect(registerCpuTrainingKernels()).toBe(true);
    expect(cpuTrainingKernelsActive()).toBe(true);
    const before = tf.memory().numTensors;
    const ours = filterGrad(c, i);
    expect(tf.memory().numTensors).toBe(before + 1); // only the result: nothing leaked
    // Ours ran (not only registered), once, and did not hand the work to the stock kernel.
    const counted = countKernelCalls('Conv2DBackpropFilter', () => filterGrad(c, i));
    expect({ ours: counted.ours, stock: counted.stock }).toEqual({ ours: 1, stock: 0 });
    expect(Array.from(counted.value.dataSync())).toEqual(Array.from(ours.dataSync()));
    counted.value.dispose();
    registerCpuTrainingKernels();
    const relL2 = tf.tidy(() => tf.norm(tf.sub(ours, stock)).div(tf.norm(stock)).dataSync()[0]);
    expect(relL2).toBeLessThan(1e-5);
    tf.dispose([stock, ours]);
  });

  it('registering twice keeps one stock kernel to restore; unregister restores it', () => {
    unregisterCpuTrainingKernels();
    const original = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    const originalMatMul = tf.getKernel('BatchMatMul', 'cpu')!.kernelFunc;
    registerCpuTrainingKernels();
    registerCpuTrainingKernels();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).not.toBe(original);
    unregisterCpuTrainingKernels();
    expect(cpuTrainingKernelsActive()).toBe(false);
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).toBe(original);
    expect(tf.getKernel('BatchMatMul', 'cpu')!.kernelFunc).toBe(originalMatMul);
    registerCpuTrainingKernels(false);
    expect(cpuTrainingKernelsActive()).toBe(false);
  });
});

type MatCase = { name: string; a: number[]; b: number[]; ta: boolean; tb: boolean };
const MATS: MatCase[] = [
  { name: '[7,5]x[5,9]', a: [7, 5], b: [5, 9], ta: false, tb: false },
  { name: 'A^T [5,7]^T x [5,9]', a: [5, 7], b: [5, 9], ta: true, tb: false },
  { name: '[7,5] x B^T [9,5]^T', a: [7, 5], b: [9, 5], ta: false, tb: true },
  { name: 'both transposed', a: [5, 7], b: [9, 5], ta: true, tb: true },
  { name: 'batched [3,16,33]x[3,33,17]', a: [3, 16, 33], b: [3, 33, 17], ta: false, tb: false },
  { name: 'broadcast [1,4,6]x[3,6,5]', a: [1, 4, 6], b: [3, 6, 5], ta: false, tb: false },
  { name: 'aggregator fc2 [16,512]x[512,512]', a: [16, 512], b: [512, 512], ta: false, tb: false },
  { name: 'dW of fc2: [16,512]^T x [16,512]', a: [16, 512], b: [16, 512], ta: true, tb: false },
];

describe('BatchMatMul on the cpu backend (ours) vs tfjs stock', () => {
  it.each(MATS.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, i) => {
    const run = () => tf.tidy(() => {
      const a = tf.relu(tf.randomNormal(c.a, 0, 1, 'float32', 50 + i)); // zeros in A, as after a ReLU
      const b = tf.randomNormal(c.b, 0, 1, 'float32', 70 + i);
      return tf.matMul(a, b, c.ta, c.tb);
    });
    unregisterCpuTrainingKernels();
    const want = run();
    const { value: got, ours, stock } = countKernelCalls('BatchMatMul', run);
    expect({ ours, stock }).toEqual({ ours: 1, stock: 0 }); // ours did the product, not the fallback
    registerCpuTrainingKernels();
    expect(got.shape).toEqual(want.shape);
    const relL2 = tf.tidy(() => tf.norm(tf.sub(got, want)).div(tf.norm(want)).dataSync()[0]);
    expect(relL2).toBeLessThan(1e-6);
    tf.dispose([want, got]);
  });

  it('mismatched inner sizes still raise tfjs\'s error', () => {
    registerCpuTrainingKernels();
    expect(() => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 5]))).toThrow(/inner shapes/);
  });
});

// Our cpu Conv2DBackpropFilter against tfjs's stock cpu kernel on random shapes: odd sizes,
// strides 1 and 2, padding same/valid/explicit, batch 1 and 64, through tf.grad as a model uses it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { cpuTrainingKernelsActive, registerCpuTrainingKernels, unregisterCpuTrainingKernels } from './cpu-filter-grad.ts';

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
    const relL2 = tf.tidy(() => tf.norm(tf.sub(ours, stock)).div(tf.norm(stock)).dataSync()[0]);
    expect(relL2).toBeLessThan(1e-5);
    tf.dispose([stock, ours]);
  });

  it('registering twice keeps one stock kernel to restore; unregister restores it', () => {
    unregisterCpuTrainingKernels();
    const original = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    registerCpuTrainingKernels();
    registerCpuTrainingKernels();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).not.toBe(original);
    unregisterCpuTrainingKernels();
    expect(cpuTrainingKernelsActive()).toBe(false);
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).toBe(original);
    registerCpuTrainingKernels(false);
    expect(cpuTrainingKernelsActive()).toBe(false);
  });
});

// Our WebGPU Conv2DBackpropInput against tfjs's cpu kernel, in Node on Dawn (`webgpu` package;
// SwiftShader on a machine without a GPU), and a small conv net's gradients through tf.grads with
// both of our kernels. The WebGPU cases are reported as skipped (not passed), saying why, only if
// Dawn finds no adapter; with an adapter, a backend that is not webgpu fails.
import { describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { nodeGpu } from '../runtime/node.ts';
import { checkInputCase, compare, INPUT_CASES, withProgramLog } from './check.ts';
import {
  activeTrainingKernels, inputGradientWork, planInputGradient, registerTrainingKernels, setFilterPlanOptions, setInputPlanOptions,
  unregisterTrainingKernels, type InputProblem,
} from './index.ts';
import { useNodeWebGPU } from './node-test-setup.ts';

const TOL = 1e-4;
const OURS = 'slideLabConv2DDerInputGemm';
// Decided before any test runs, so that without an adapter the count says "skipped".
const adapter = await (await nodeGpu())?.requestAdapter({ powerPreference: 'high-performance' });
const gpu = useNodeWebGPU(() => setInputPlanOptions({ minMacs: 0 })); // exercise our kernel even on the smallest cases

const problem = (x: number[], k: number, ci: number, co: number, s: number): InputProblem => ({
  batch: x[0], inHeight: x[1], inWidth: x[2], inChannels: ci, outChannels: co, filterHeight: k, filterWidth: k, strideHeight: s, strideWidth: s,
});

describe('planInputGradient', () => {
  it('picks legal tiles and one dispatch slice per stride class', () => {
    const p = planInputGradient(problem([4, 64, 64], 3, 32, 64, 2));
    expect(p.classes).toBe(4);
    expect([p.tm, p.tn, p.tk]).toEqual([64, 32, 16]);
    const threads = (p.tn / p.rn) * (p.tm / p.rm);
    expect(threads % p.tm).toBe(0);
    expect(threads % p.tk).toBe(0);
    expect(planInputGradient(problem([1, 4, 4], 3, 3, 4, 1))).toMatchObject({ tm: 32, tn: 16, tk: 8, classes: 1 });
  });
  it('counts a stride-2 3x3 conv as 9/4 taps per pixel', () => {
    const w = inputGradientWork(problem([2, 8, 8], 3, 4, 4, 2));
    expect(w.maxClassPixels).toBe(2 * 4 * 4);
    expect(w.macs).toBeCloseTo(2 * 8 * 8 * 4 * 4 * 2.25);
  });
});

describe.skipIf(!adapter)('Conv2DBackpropInput on WebGPU (ours) vs cpu backend', () => {
  it.each(INPUT_CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    expect(gpu.webgpu, 'Dawn found an adapter, so tfjs must run on webgpu').toBe(true);
    registerTrainingKernels({ enabled: true });
    expect(activeTrainingKernels()).toEqual(['Conv2DBackpropFilter', 'Conv2DBackpropInput']);
    const r = await checkInputCase(c, 3000 + i);
    console.log(`${c.name}: relL2 ${r.relL2.toExponential(2)} maxAbs ${r.maxAbs.toExponential(2)} [${r.programs.join(', ')}]`);
    expect(r.programs).toEqual([expect.stringContaining(OURS)]); // our kernel ran, not the stock fallback
    expect(r.relL2).toBeLessThan(TOL);
    expect(r.tensorsLeaked).toBe(0);
    expect(r.dataIdsLeaked).toBe(0);
  });

  it('keeps the stock kernel below the size threshold, and the stock kernel agrees too', async () => {
    expect(gpu.webgpu).toBe(true);
    registerTrainingKernels({ enabled: true });
    setInputPlanOptions({ minMacs: 1e12 });
    try {
      const r = await checkInputCase(INPUT_CASES[1], 7);
      expect(r.programs.some((k) => k.includes(OURS))).toBe(false);
      expect(r.relL2).toBeLessThan(TOL);
    } finally {
      setInputPlanOptions({ minMacs: 0 });
    }
    unregisterTrainingKernels();
    expect(activeTrainingKernels()).toEqual([]);
    const stock = await checkInputCase(INPUT_CASES[3], 8);
    expect(stock.programs.some((k) => k.includes(OURS))).toBe(false);
    expect(stock.relL2).toBeLessThan(TOL);
    registerTrainingKernels({ enabled: true });
  });

  it('falls back to the stock kernel for NCHW', async () => {
    expect(gpu.webgpu).toBe(true);
    registerTrainingKernels({ enabled: true });
    await tf.setBackend('webgpu');
    const { programs } = await withProgramLog(async () => {
      const dx = tf.tidy(() => tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.ones([1, 4, 3, 3]), filter: tf.ones([3, 3, 2, 4]) }, {
        inputShape: [1, 2, 5, 5], strides: [2, 2], pad: 'same', dataFormat: 'NCHW', dimRoundingMode: undefined,
      } as unknown as tf.NamedAttrMap) as tf.Tensor);
      const v = await dx.data();
      dx.dispose();
      return v;
    });
    expect(programs.length).toBeGreaterThan(0);
    expect(programs.some((k) => k.includes(OURS))).toBe(false);
  });

  it('gradients of a conv net through tf.grads match the cpu backend with both kernels ours', async () => {
    expect(gpu.webgpu).toBe(true);
    registerTrainingKernels({ enabled: true });
    setFilterPlanOptions({ minReduction: 0 });
    const rng = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      const { value, programs } = await withProgramLog(async () => {
        const gs = tf.tidy(() => {
          const x = tf.tensor4d(rng(2 * 17 * 15 * 3, 1), [2, 17, 15, 3]);
          const w1 = tf.tensor4d(rng(3 * 3 * 3 * 8, 2), [3, 3, 3, 8]);
          const w2 = tf.tensor4d(rng(3 * 3 * 8 * 12, 3), [3, 3, 8, 12]);
          const w3 = tf.tensor4d(rng(2 * 2 * 12 * 6, 4), [2, 2, 12, 6]);
          const f = (xx: tf.Tensor4D, a: tf.Tensor4D, b: tf.Tensor4D, c: tf.Tensor4D) => {
            const h1 = tf.relu(tf.conv2d(xx, a, 2, 'same'));
            const h2 = tf.relu(tf.conv2d(h1, b, 1, 'valid'));
            return tf.conv2d(h2, c, 2, 'same').square().sum() as tf.Scalar;
          };
          return tf.grads(f as (...t: tf.Tensor[]) => tf.Tensor)([x, w1, w2, w3]);
        });
        const out = await Promise.all(gs.map((g) => g.data() as Promise<Float32Array>));
        tf.dispose(gs);
        return out;
      });
      return { values: value, programs };
    };
    const want = await grads('cpu');
    const before = tf.memory().numTensors;
    const got = await grads('webgpu');
    expect(tf.memory().numTensors).toBe(before);
    // dx of all three convs (x, h1, h2) and dW of all three ran through our kernels.
    expect(got.programs.filter((k) => k.includes(OURS))).toHaveLength(3);
    expect(got.programs.filter((k) => k.includes('slideLabConv2DDerFilterGemm'))).toHaveLength(3);
    const names = ['dx', 'dW1', 'dW2', 'dW3'];
    for (let k = 0; k < 4; k++) {
      const { relL2 } = compare(got.values[k], want.values[k]);
      console.log(`tf.grads ${names[k]}: relL2 ${relL2.toExponential(2)}`);
      expect(relL2, names[k]).toBeLessThan(TOL);
    }
  }, 300_000); // compiles several pipelines on SwiftShader
});

// Our WebGPU Conv2DBackpropFilter against tfjs's cpu kernel, in Node on Dawn (`webgpu` package;
// SwiftShader on a machine without a GPU). Skips, saying why, only if no adapter can be made.
import { describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { checkFilterCase, FILTER_CASES } from './check.ts';
import { activeTrainingKernels, planFilterGradient, registerTrainingKernels, setFilterPlanOptions, unregisterTrainingKernels } from './index.ts';
import { useNodeWebGPU } from './node-test-setup.ts';

const TOL = 1e-4;
const gpu = useNodeWebGPU(() => setFilterPlanOptions({ minReduction: 0 })); // exercise our kernel even on the smallest cases

describe('planFilterGradient', () => {
  it('splits a long reduction and keeps tiles legal', () => {
    const big = planFilterGradient(27, 32, 64 * 112 * 112);
    expect(big.splits).toBeGreaterThan(1);
    expect(big.splits * big.tilesPerSplit * big.tk).toBeGreaterThanOrEqual(64 * 112 * 112);
    expect((big.splits - 1) * big.tilesPerSplit * big.tk).toBeLessThan(64 * 112 * 112);
    const small = planFilterGradient(27, 5, 63);
    expect(small.splits).toBe(1);
    const capped = planFilterGradient(4608, 512, 1e7, { maxPartialBytes: 32 * 2 ** 20 });
    expect(capped.splits * 4608 * 512 * 4).toBeLessThanOrEqual(32 * 2 ** 20);
  });
});

describe('Conv2DBackpropFilter on WebGPU (ours) vs cpu backend', () => {
  it.each(FILTER_CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    if (!gpu.webgpu) return; // reported in beforeAll
    registerTrainingKernels({ enabled: true });
    expect(activeTrainingKernels()).toEqual(['Conv2DBackpropFilter', 'Conv2DBackpropInput']);
    const r = await checkFilterCase(c, 1000 + i);
    console.log(`${c.name}: relL2 ${r.relL2.toExponential(2)} maxAbs ${r.maxAbs.toExponential(2)}`);
    expect(r.relL2).toBeLessThan(TOL);
    expect(r.tensorsLeaked).toBe(0);
    expect(r.dataIdsLeaked).toBe(0); // the split-K partials were freed
  });

  it('the stock kernel is restored and agrees too (sanity of the harness)', async () => {
    if (!gpu.webgpu) return;
    unregisterTrainingKernels();
    expect(activeTrainingKernels()).toEqual([]);
    const r = await checkFilterCase(FILTER_CASES[1], 7);
    expect(r.relL2).toBeLessThan(TOL);
    registerTrainingKernels({ enabled: true });
  });

  it('gradients of a conv net through tf.grad match the cpu backend', async () => {
    if (!gpu.webgpu) return;
    registerTrainingKernels({ enabled: true });
    const rng = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      const gs = tf.tidy(() => {
        const x = tf.tensor4d(rng(2 * 17 * 17 * 3, 1), [2, 17, 17, 3]);
        const w1 = tf.tensor4d(rng(3 * 3 * 3 * 8, 2), [3, 3, 3, 8]);
        const w2 = tf.tensor4d(rng(3 * 3 * 8 * 12, 3), [3, 3, 8, 12]);
        const f = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.relu(tf.conv2d(tf.relu(tf.conv2d(x, a, 2, 'same')), b, 1, 'valid')).square().sum() as tf.Scalar;
        const [g1, g2] = tf.grads(f as (...t: tf.Tensor[]) => tf.Tensor)([w1, w2]);
        return [g1, g2];
      });
      const out = [await gs[0].data(), await gs[1].data()];
      tf.dispose(gs);
      return out;
    };
    const want = await grads('cpu');
    const got = await grads('webgpu');
    for (let k = 0; k < 2; k++) {
      let d = 0;
      let nrm = 0;
      want[k].forEach((v, i) => { d += (got[k][i] - v) ** 2; nrm += v * v; });
      expect(Math.sqrt(d / nrm)).toBeLessThan(TOL);
    }
  });
});

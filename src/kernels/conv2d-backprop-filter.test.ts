// Our WebGPU Conv2DBackpropFilter against tfjs's cpu kernel, in Node on Dawn (`webgpu` package;
// SwiftShader on a machine without a GPU). The WebGPU cases are reported as skipped (not passed),
// saying why, only if Dawn finds no adapter; with an adapter, a backend that is not webgpu fails.
import { describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { nodeGpu } from '../runtime/node.ts';
import { checkFilterCase, FILTER_CASES, outSize, withProgramLog } from './check.ts';
import { activeTrainingKernels, planFilterGradient, registerTrainingKernels, setFilterPlanOptions, unregisterTrainingKernels } from './index.ts';
import { useNodeWebGPU } from './node-test-setup.ts';

const TOL = 1e-4;
const OURS = 'slideLabConv2DDerFilterGemm';
const SPLIT_SUM = 'slideLabSplitSum';
// Decided before any test runs, so that without an adapter the count says "skipped".
const adapter = await (await nodeGpu())?.requestAdapter({ powerPreference: 'high-performance' });
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

describe.skipIf(!adapter)('Conv2DBackpropFilter on WebGPU (ours) vs cpu backend', () => {
  it.each(FILTER_CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    expect(gpu.webgpu, 'Dawn found an adapter, so tfjs must run on webgpu').toBe(true);
    registerTrainingKernels({ enabled: true });
    expect(activeTrainingKernels()).toEqual(['Conv2DBackpropFilter', 'Conv2DBackpropInput']);
    const r = await checkFilterCase(c, 1000 + i);
    console.log(`${c.name}: relL2 ${r.relL2.toExponential(2)} maxAbs ${r.maxAbs.toExponential(2)} [${r.programs.join(', ')}]`);
    // Our kernel ran (not only registered): its GEMM, and the split-K sum exactly when the plan splits.
    const [kh, kw, ci, co] = c.filter;
    const p = c.x[0] * outSize(c.x[1], kh, c.stride, c.pad) * outSize(c.x[2], kw, c.stride, c.pad);
    const { splits } = planFilterGradient(kh * kw * ci, co, p);
    expect(r.programs).toEqual([expect.stringContaining(OURS), ...(splits > 1 ? [SPLIT_SUM] : [])]);
    expect(r.relL2).toBeLessThan(TOL);
    expect(r.tensorsLeaked).toBe(0);
    expect(r.dataIdsLeaked).toBe(0); // the split-K partials were freed
  });

  it('the stock kernel is restored and agrees too (sanity of the harness)', async () => {
    expect(gpu.webgpu).toBe(true);
    unregisterTrainingKernels();
    expect(activeTrainingKernels()).toEqual([]);
    const r = await checkFilterCase(FILTER_CASES[1], 7);
    expect(r.programs.length).toBeGreaterThan(0); // the stock kernel ran on webgpu...
    expect(r.programs.some((k) => k.startsWith('slideLab'))).toBe(false); // ...and none of ours
    expect(r.relL2).toBeLessThan(TOL);
    registerTrainingKernels({ enabled: true });
  });

  it('gradients of a conv net through tf.grad match the cpu backend', async () => {
    expect(gpu.webgpu).toBe(true);
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
    await tf.setBackend('webgpu'); // withProgramLog records the backend active when it starts
    const { value: got, programs } = await withProgramLog(() => grads('webgpu'));
    expect(programs.filter((k) => k.includes(OURS))).toHaveLength(2); // dW of both convs ran through our kernel
    for (let k = 0; k < 2; k++) {
      let d = 0;
      let nrm = 0;
      want[k].forEach((v, i) => { d += (got[k][i] - v) ** 2; nrm += v * v; });
      expect(Math.sqrt(d / nrm)).toBeLessThan(TOL);
    }
  });
});

// Test/bench page for our WebGPU kernels in Chromium (SwiftShader here, a real GPU with
// SLIDE_LAB_GPU=1): correctness against the cpu backend, and stock-vs-ours kernel timings, for
// Conv2DBackpropFilter and Conv2DBackpropInput.
import { tf } from '../../src/core/tf.ts';
import { useWebGPU } from '../../src/runtime/webgpu.ts';
import type { BackendInfo } from '../../src/core/protocol.ts';
import { checkFilterCase, checkInputCase, FILTER_CASES, INPUT_CASES, type FilterCheck } from '../../src/kernels/check.ts';
import { activeTrainingKernels, registerTrainingKernels, setFilterPlanOptions, setInputPlanOptions } from '../../src/kernels/index.ts';
import { benchFilterKernels, benchInputKernels, cnn4Layers, resnetLayers, type KernelRow } from '../lib/kernel-bench.ts';

let backend: BackendInfo | null = null;

async function setup(): Promise<BackendInfo> {
  backend ??= await useWebGPU((navigator as Navigator & { gpu?: GPU }).gpu);
  if (backend.backend !== 'webgpu') throw new Error(`no WebGPU in this page: ${backend.fallbackReason}`);
  return backend;
}

/** `kernel` picks the cases: the weight gradient (default, as before) or the input gradient. */
async function check(kernel: 'filter' | 'input' = 'filter'): Promise<{ backend: BackendInfo; active: string[]; results: FilterCheck[] }> {
  const info = await setup();
  registerTrainingKernels({ enabled: true });
  // Exercise our kernels even on the smallest cases.
  setFilterPlanOptions({ minReduction: 0 });
  setInputPlanOptions({ minMacs: 0 });
  const results: FilterCheck[] = [];
  try {
    if (kernel === 'filter') for (const [i, c] of FILTER_CASES.entries()) results.push(await checkFilterCase(c, 2000 + i));
    else for (const [i, c] of INPUT_CASES.entries()) results.push(await checkInputCase(c, 4000 + i));
  } finally {
    setFilterPlanOptions({});
    setInputPlanOptions({});
  }
  return { backend: info, active: activeTrainingKernels(), results };
}

async function bench(opts: { batch: number; size: number; width: number; reps: number }): Promise<{ backend: BackendInfo; rows: KernelRow[]; tfjs: string; userAgent: string }> {
  const info = await setup();
  const layers = [...cnn4Layers(opts.batch, opts.size), ...resnetLayers(Math.max(1, opts.batch >> 1), opts.size, opts.width)];
  const rows = [...(await benchFilterKernels(layers, opts.reps)), ...(await benchInputKernels(layers, opts.reps))];
  registerTrainingKernels({ enabled: true });
  return { backend: info, rows, tfjs: tf.version.tfjs, userAgent: navigator.userAgent };
}

(window as unknown as { slideLabKernels: unknown }).slideLabKernels = { check, bench };
document.body.dataset.ready = '1';

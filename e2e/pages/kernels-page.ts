// Test/bench page for our WebGPU kernels in Chromium (SwiftShader here, a real GPU with
// SLIDE_LAB_GPU=1): correctness against the cpu backend, and stock-vs-ours kernel timings.
import { tf } from '../../src/core/tf.ts';
import { useWebGPU } from '../../src/runtime/webgpu.ts';
import type { BackendInfo } from '../../src/core/protocol.ts';
import { checkFilterCase, FILTER_CASES, type FilterCheck } from '../../src/kernels/check.ts';
import { activeTrainingKernels, registerTrainingKernels, setFilterPlanOptions } from '../../src/kernels/index.ts';
import { benchFilterKernels, cnn4Layers, resnetLayers, type KernelRow } from '../../bench/lib/kernel-bench.ts';

let backend: BackendInfo | null = null;

async function setup(): Promise<BackendInfo> {
  backend ??= await useWebGPU((navigator as Navigator & { gpu?: GPU }).gpu);
  if (backend.backend !== 'webgpu') throw new Error(`no WebGPU in this page: ${backend.fallbackReason}`);
  return backend;
}

async function check(): Promise<{ backend: BackendInfo; active: string[]; results: FilterCheck[] }> {
  const info = await setup();
  registerTrainingKernels({ enabled: true });
  setFilterPlanOptions({ minReduction: 0 }); // exercise our kernel even on the smallest cases
  const results: FilterCheck[] = [];
  try {
    for (const [i, c] of FILTER_CASES.entries()) results.push(await checkFilterCase(c, 2000 + i));
  } finally {
    setFilterPlanOptions({});
  }
  return { backend: info, active: activeTrainingKernels(), results };
}

async function bench(opts: { batch: number; size: number; width: number; reps: number }): Promise<{ backend: BackendInfo; rows: KernelRow[]; tfjs: string; userAgent: string }> {
  const info = await setup();
  const rows = await benchFilterKernels([...cnn4Layers(opts.batch, opts.size), ...resnetLayers(Math.max(1, opts.batch >> 1), opts.size, opts.width)], opts.reps);
  registerTrainingKernels({ enabled: true });
  return { backend: info, rows, tfjs: tf.version.tfjs, userAgent: navigator.userAgent };
}

(window as unknown as { slideLabKernels: unknown }).slideLabKernels = { check, bench };
document.body.dataset.ready = '1';

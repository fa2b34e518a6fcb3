// The set-up both kernel test files share: tfjs's webgpu backend in Node on Dawn (`webgpu`
// package; SwiftShader on a machine without a GPU), and afterwards the stock kernels and default
// plan options back. Tests skip, saying why, only if no adapter can be made; the Chromium test
// e2e/kernels.spec.ts still runs the cases then.
import { afterAll, beforeAll } from 'vitest';
import { nodeGpu } from '../runtime/node.ts';
import { useWebGPU } from '../runtime/webgpu.ts';
import { setFilterPlanOptions, setInputPlanOptions, unregisterTrainingKernels } from './index.ts';

/**
 * Registers this file's beforeAll/afterAll. `forceOurs` sets the plan options that make our
 * kernel run even on the smallest cases. The returned `webgpu` turns true in beforeAll when the
 * backend is webgpu; a test returns early while it is false.
 */
export function useNodeWebGPU(forceOurs: () => void): { readonly webgpu: boolean } {
  const state = { webgpu: false };
  beforeAll(async () => {
    const info = await useWebGPU(await nodeGpu());
    state.webgpu = info.backend === 'webgpu';
    forceOurs();
    if (!state.webgpu) {
      console.warn(`SKIPPED: no WebGPU adapter in Node (${info.fallbackReason ?? ''}); the Chromium test e2e/kernels.spec.ts still runs the cases`);
    }
  });
  afterAll(() => {
    unregisterTrainingKernels();
    setFilterPlanOptions({});
    setInputPlanOptions({});
  });
  return state;
}

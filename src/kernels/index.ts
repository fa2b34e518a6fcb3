// Slide Lab's own WebGPU training kernels for tfjs, swapped in and out of tfjs's kernel registry.
// Call registerTrainingKernels() after tfjs's webgpu backend module has been imported (it
// registers its stock kernels on import, which would overwrite ours). Kernels are looked up at
// every op call, so switching between stock and ours takes effect on the next op.
import { tf } from '../core/tf.ts';
import { makeConv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { makeConv2DBackpropInput } from './conv2d-backprop-input.ts';

export { getFilterPlanOptions, planFilterGradient, setFilterPlanOptions, type FilterPlanOptions, type FilterTiling } from './conv2d-backprop-filter.ts';
export {
  getInputPlanOptions, inputGradientWork, planInputGradient, setInputPlanOptions, type InputPlanOptions, type InputProblem, type InputTiling,
} from './conv2d-backprop-input.ts';

export type TrainingKernelName = 'Conv2DBackpropFilter' | 'Conv2DBackpropInput';
export const TRAINING_KERNELS: readonly TrainingKernelName[] = ['Conv2DBackpropFilter', 'Conv2DBackpropInput'];

/** Each kernel's factory: given tfjs's stock kernel (the fallback), returns ours. */
const MAKERS: Record<TrainingKernelName, (fallback: tf.KernelFunc | undefined) => tf.KernelFunc> = {
  Conv2DBackpropFilter: makeConv2DBackpropFilter,
  Conv2DBackpropInput: makeConv2DBackpropInput,
};

const BACKEND = 'webgpu';
/** The stock configs we replaced, to restore them. */
const stock = new Map<TrainingKernelName, tf.KernelConfig>();

/**
 * The switch: SLIDE_LAB_KERNELS=stock|ours in the environment (Node, inherited by worker_threads
 * ranks) or `globalThis.SLIDE_LAB_KERNELS` (a page or worker). Unset: ours, on every adapter.
 * (Software fallback adapters once kept the stock kernels: our shaders' unrolled tile loads cost
 * SwiftShader 20-45 s of compile on the first step. Written as loops they cost 2-3 s more than
 * stock there, with steady steps level; bench/RESULTS.md section 6.)
 */
export function trainingKernelsWanted(): boolean {
  const g = globalThis as { SLIDE_LAB_KERNELS?: string; process?: { env?: Record<string, string | undefined> } };
  const choice = g.SLIDE_LAB_KERNELS ?? g.process?.env?.SLIDE_LAB_KERNELS;
  return choice !== 'stock';
}

/**
 * Replaces tfjs's stock webgpu kernels with ours. `enabled: false` restores the stock ones (the
 * benchmarks compare both). Returns the names of the kernels that are now ours.
 */
export function registerTrainingKernels(opts: { enabled?: boolean } = {}): TrainingKernelName[] {
  const enabled = opts.enabled ?? trainingKernelsWanted();
  if (!enabled) {
    unregisterTrainingKernels();
    return [];
  }
  for (const name of TRAINING_KERNELS) {
    const current = tf.getKernel(name, BACKEND);
    if (!current) throw new Error(`tfjs has no '${name}' kernel for '${BACKEND}': import @tensorflow/tfjs-backend-webgpu first`);
    if (isOurs(current)) continue;
    stock.set(name, current);
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc: tagged(MAKERS[name](current.kernelFunc)) });
  }
  return activeTrainingKernels();
}

/** Puts tfjs's stock kernels back. */
export function unregisterTrainingKernels(): void {
  for (const [name, config] of stock) {
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel(config);
  }
  stock.clear();
}

/** Which of our kernels are registered right now. */
export function activeTrainingKernels(): TrainingKernelName[] {
  return TRAINING_KERNELS.filter((name) => {
    const k = tf.getKernel(name, BACKEND);
    return k !== undefined && isOurs(k);
  });
}

const OURS = Symbol.for('slide-lab.kernel');
function tagged(f: tf.KernelFunc): tf.KernelFunc {
  (f as unknown as Record<symbol, boolean>)[OURS] = true;
  return f;
}
function isOurs(k: tf.KernelConfig): boolean {
  return Boolean((k.kernelFunc as unknown as Record<symbol, boolean>)[OURS]);
}

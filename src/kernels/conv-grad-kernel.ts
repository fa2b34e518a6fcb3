// The tfjs side both conv-gradient kernels share (the GPU side is gemm-tile.ts): the attributes
// tfjs passes them, the NHWC float32 gate in front of the stock fallback, and a module-level
// store for each kernel's tunable plan options.
import { tf } from '../core/tf.ts';
import type { WebGPUBackendLike } from './webgpu-types.ts';

/** Attributes tfjs passes to Conv2DBackpropFilter and Conv2DBackpropInput (each adds its own). */
export interface ConvGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** One kernel call as our kernels see it: `inputs` by name, the webgpu backend, the attributes. */
export interface ConvGradCall<I extends Record<string, tf.TensorInfo>, A extends ConvGradAttrs> {
  inputs: I;
  backend: WebGPUBackendLike;
  attrs: A;
}

type Shape4 = [number, number, number, number];

/**
 * Makes a tfjs kernel function that runs `ours` on NHWC calls whose inputs are all float32, and
 * hands everything else to `fallback` (tfjs's stock kernel; without one such a call throws).
 * `ours` gets the forward conv's geometry, computed from `shapes(call)` = [x [B, H, W, CI],
 * W [KH, KW, CI, CO]] and the attributes (dilation 1), and the fallback (undefined when there is
 * none) to decline problems it is not worth running on (e.g. too small).
 */
export function convGradKernel<I extends Record<string, tf.TensorInfo>, A extends ConvGradAttrs>(
  kernelName: string,
  fallback: tf.KernelFunc | undefined,
  shapes: (call: ConvGradCall<I, A>) => [Shape4, Shape4],
  ours: (call: ConvGradCall<I, A>, info: tf.backend_util.Conv2DInfo, stock: (() => tf.TensorInfo) | undefined) => tf.TensorInfo,
): tf.KernelFunc {
  return (args) => {
    const call = args as unknown as ConvGradCall<I, A>;
    const stock = fallback && (() => fallback(args) as tf.TensorInfo);
    const nhwc = tf.backend_util.convertConv2DDataFormat(call.attrs.dataFormat) === 'channelsLast';
    if (!nhwc || Object.values(call.inputs).some((t) => t.dtype !== 'float32')) {
      if (!stock) throw new Error(`slide-lab ${kernelName}: only NHWC float32 is implemented`);
      return stock();
    }
    const { strides, pad, dimRoundingMode } = call.attrs;
    const [xShape, filterShape] = shapes(call);
    const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    return ours(call, info, stock);
  };
}

/** Module-level options with defaults: `set` replaces them (unset fields take the defaults). */
export class OptionStore<T extends object> {
  /** The options in force; read-only by convention (kernels read it on every call). */
  current: Required<T>;

  constructor(readonly defaults: Required<T>) {
    this.current = { ...defaults };
  }

  /** Returns the options now in force. */
  set(opts: T): Required<T> {
    this.current = { ...this.defaults, ...opts };
    return this.current;
  }

  /** A copy of the options in force. */
  get(): Required<T> {
    return { ...this.current };
  }
}

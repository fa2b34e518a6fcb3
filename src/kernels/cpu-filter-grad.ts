// A faster Conv2DBackpropFilter for tfjs's cpu backend (the fallback when a thread has no WebGPU,
// and the Node benchmarks). tfjs-backend-cpu 4.22 reads every multiply-add's operands through
// TensorBuffer.get (index arithmetic per element): about 20x the time of the forward Conv2D and
// 95% of a tiny-CNN backward (measured; bench/RESULTS.md §4). This is the same sum over plain
// Float32Arrays, NHWC, dilation 1; anything else goes to the stock kernel:
//
//   dW[kh, kw, ci, co] = sum over (b, oy, ox) of x[b, oy*sh - padT + kh, ox*sw - padL + kw, ci] * dy[b, oy, ox, co]
//
// It allocates exactly what the stock kernel does (one [KH, KW, CI, CO] output), so peak tensor
// bytes do not change.
import { tf } from '../core/tf.ts';

interface CpuBackendLike {
  data: { get(id: unknown): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
}
interface FilterAttrs {
  strides: [number, number] | number;
  pad: 'same' | 'valid' | number;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

const BACKEND = 'cpu';
const NAME = 'Conv2DBackpropFilter';
let stock: tf.KernelConfig | undefined;

function makeKernel(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as { inputs: { x: tf.TensorInfo; dy: tf.TensorInfo }; backend: CpuBackendLike; attrs: FilterAttrs };
    const { x, dy } = inputs;
    if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') return fallback(args);
    const c = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
    const xv = backend.data.get(x.dataId).values; // [B, H, W, CI]
    const dyv = backend.data.get(dy.dataId).values; // [B, OH, OW, CO]
    const { batchSize: B, inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO, filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = c;
    const top = c.padInfo.top, left = c.padInfo.left;
    const dw = new Float32Array(FH * FW * CI * CO); // [FH, FW, CI, CO]
    for (let b = 0; b < B; b++) {
      for (let oy = 0; oy < OH; oy++) {
        for (let ox = 0; ox < OW; ox++) {
          const dyo = ((b * OH + oy) * OW + ox) * CO;
          for (let kh = 0; kh < FH; kh++) {
            const iy = oy * SH - top + kh;
            if (iy < 0 || iy >= H) continue;
            for (let kw = 0; kw < FW; kw++) {
              const ix = ox * SW - left + kw;
              if (ix < 0 || ix >= W) continue;
              const xo = ((b * H + iy) * W + ix) * CI;
              const wo = (kh * FW + kw) * CI * CO;
              for (let ci = 0; ci < CI; ci++) {
                const xval = xv[xo + ci];
                if (xval === 0) continue; // post-ReLU inputs are mostly zeros (a zero adds nothing, NaN in dy aside)
                const o = wo + ci * CO;
                for (let co = 0; co < CO; co++) dw[o + co] += xval * dyv[dyo + co];
              }
            }
          }
        }
      }
    }
    return backend.makeTensorInfo(c.filterShape, 'float32', dw);
  };
}

/** Puts our cpu filter gradient in place of tfjs's (idempotent). Returns whether ours is active. */
export function registerCpuTrainingKernels(enabled = true): boolean {
  if (!enabled) {
    unregisterCpuTrainingKernels();
    return false;
  }
  if (stock) return true;
  const current = tf.getKernel(NAME, BACKEND);
  if (!current) throw new Error(`tfjs has no '${NAME}' kernel for '${BACKEND}'`);
  stock = current;
  tf.unregisterKernel(NAME, BACKEND);
  tf.registerKernel({ kernelName: NAME, backendName: BACKEND, kernelFunc: makeKernel(current.kernelFunc) });
  return true;
}

/** Puts tfjs's stock cpu kernel back. */
export function unregisterCpuTrainingKernels(): void {
  if (!stock) return;
  tf.unregisterKernel(NAME, BACKEND);
  tf.registerKernel(stock);
  stock = undefined;
}

export const cpuTrainingKernelsActive = (): boolean => stock !== undefined;

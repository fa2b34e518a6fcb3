// Faster kernels for tfjs's cpu backend (the fallback when a thread has no WebGPU, the lab's
// main context on a software adapter, worker-thread ranks in Node and the Node benchmarks), the
// same sums over plain Float32Arrays; anything they do not cover goes to tfjs's stock kernel.
//
// Conv2DBackpropFilter: tfjs-backend-cpu 4.22 reads every multiply-add's operands through
// TensorBuffer.get (index arithmetic per element): about 20x the time of the forward Conv2D and
// 95% of a tiny-CNN backward (measured; bench/RESULTS.md §4). NHWC, dilation 1:
//
//   dW[kh, kw, ci, co] = sum over (b, oy, ox) of x[b, oy*sh - padT + kh, ox*sw - padL + kw, ci] * dy[b, oy, ox, co]
//
// BatchMatMul: tfjs's loop takes a strided dot product per output, walking B down a column
// (stride N) for the common non-transposed case. Ours makes both operands row-major
// (copying a transposed one once) and runs i-k-j, so the inner loop streams a row of B and a row
// of C. float32, any batch broadcasting tfjs allows.
//
// Each allocates exactly what the stock kernel does (its one output), so peak tensor bytes do not
// change.
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
type CpuKernelName = 'Conv2DBackpropFilter' | 'BatchMatMul';
/** The stock configs we replaced, to restore them. */
const stock = new Map<CpuKernelName, tf.KernelConfig>();

function makeFilterGrad(fallback: tf.KernelFunc): tf.KernelFunc {
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

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** Row-major [rows, cols] copy of the transpose of a row-major [cols, rows] matrix at `offset`. */
function transposed(src: Float32Array, offset: number, cols: number, rows: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[r * cols + c] = src[offset + c * rows + r];
  return out;
}

function makeMatMul(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; backend: CpuBackendLike; attrs: MatMulAttrs };
    const { a, b } = inputs;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return fallback(args);
    const ra = a.shape.length, rb = b.shape.length;
    const M = attrs.transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = attrs.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const N = attrs.transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if ((attrs.transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) !== K) return fallback(args); // let tfjs word the error
    const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const batch = Math.max(batchA, batchB);
    // tfjs's cpu kernel broadcasts a batch of 1, or reuses batches cyclically: bi % batchA.
    const av = backend.data.get(a.dataId).values; // [batchA, M, K] (or [batchA, K, M] transposed)
    const bv = backend.data.get(b.dataId).values; // [batchB, K, N] (or [batchB, N, K] transposed)
    const out = new Float32Array(batch * M * N); // [batch, M, N]
    for (let bi = 0; bi < batch; bi++) {
      const ao = (bi % batchA) * M * K, bo = (bi % batchB) * K * N;
      const A = attrs.transposeA ? transposed(av, ao, K, M) : av.subarray(ao, ao + M * K); // [M, K]
      const B = attrs.transposeB ? transposed(bv, bo, N, K) : bv.subarray(bo, bo + K * N); // [K, N]
      const co = bi * M * N;
      for (let i = 0; i < M; i++) {
        const crow = co + i * N;
        for (let k = 0; k < K; k++) {
          const aik = A[i * K + k];
          if (aik === 0) continue; // post-ReLU and dropout rows are mostly zeros (NaN in B aside)
          const brow = k * N;
          for (let j = 0; j < N; j++) out[crow + j] += aik * B[brow + j];
        }
      }
    }
    return backend.makeTensorInfo([...outer, M, N], 'float32', out);
  };
}

const MAKERS: Record<CpuKernelName, (fallback: tf.KernelFunc) => tf.KernelFunc> = { Conv2DBackpropFilter: makeFilterGrad, BatchMatMul: makeMatMul };

/** Puts our cpu kernels in place of tfjs's (idempotent). Returns whether ours are active. */
export function registerCpuTrainingKernels(enabled = true): boolean {
  if (!enabled) {
    unregisterCpuTrainingKernels();
    return false;
  }
  for (const name of Object.keys(MAKERS) as CpuKernelName[]) {
    if (stock.has(name)) continue;
    const current = tf.getKernel(name, BACKEND);
    if (!current) throw new Error(`tfjs has no '${name}' kernel for '${BACKEND}'`);
    stock.set(name, current);
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc: MAKERS[name](current.kernelFunc) });
  }
  return true;
}

/** Puts tfjs's stock cpu kernels back. */
export function unregisterCpuTrainingKernels(): void {
  for (const [name, config] of stock) {
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel(config);
  }
  stock.clear();
}

export const cpuTrainingKernelsActive = (): boolean => stock.size > 0;

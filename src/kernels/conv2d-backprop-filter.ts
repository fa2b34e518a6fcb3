// A tiled, shared-memory WGSL weight gradient for tfjs's webgpu backend (kernel
// 'Conv2DBackpropFilter', NHWC). It replaces tfjs's stock kernel, which gives every weight one
// thread and loops serially over batch x output pixels.
//
// dW[kh, kw, ci, co] = sum over p = (b, oy, ox) of x[b, oy*sh - padT + kh, ox*sw - padL + kw, ci] * dy[b, oy, ox, co]
//
// As an implicit GEMM: dW [M = KH*KW*CI, N = CO] = A^T B, where A [P = B*OH*OW, M] is the im2col
// matrix of x (built on the fly while loading tiles, never materialised) and B [P, N] is dy.
// The reduction axis P is long (batch x output pixels) and M x N can be small, so P is split into
// S chunks ("split-K"): workgroup (n-tile, m-tile, s) writes a partial [M, N] sum over its chunk,
// and a second program sums the S partials. Each workgroup stages TK x TM of A and TK x TN of B
// in workgroup memory; each thread accumulates an RM x RN block in registers.
import { tf } from '../core/tf.ts';
import type { WebGPUProgramLike, WebGPUBackendLike, UniformEntry } from './webgpu-types.ts';

export interface FilterTiling {
  /** Tile rows (M = KH*KW*CI), tile columns (N = CO), reduction depth per stage (P). */
  tm: number;
  tn: number;
  tk: number;
  /** Outputs per thread along M and N. */
  rm: number;
  rn: number;
  /** Number of chunks the P axis is split into (partials summed by a second pass). */
  splits: number;
  /** TK-deep stages per chunk. */
  tilesPerSplit: number;
}

export interface FilterPlanOptions {
  /** Aim for at least this many workgroups (fills a real GPU; SwiftShader needs few). */
  targetWorkgroups?: number;
  /** Never give a chunk fewer than this many TK stages. */
  minTilesPerSplit?: number;
  /** Upper bound on the bytes of the partial sums buffer. */
  maxPartialBytes?: number;
  /**
   * Below this many reduction terms (P = batch x output pixels) the stock kernel is used: its
   * one-thread-per-weight loop is then short, and tiling would mostly load padding.
   */
  minReduction?: number;
}

const DEFAULTS: Required<FilterPlanOptions> = { targetWorkgroups: 256, minTilesPerSplit: 4, maxPartialBytes: 64 * 2 ** 20, minReduction: 128 };
let planOptions: Required<FilterPlanOptions> = { ...DEFAULTS };

/** Tunes the split heuristic (benchmarks sweep it); returns the options now in force. */
export function setFilterPlanOptions(opts: FilterPlanOptions): Required<FilterPlanOptions> {
  planOptions = { ...DEFAULTS, ...opts };
  return planOptions;
}

export function getFilterPlanOptions(): Required<FilterPlanOptions> {
  return { ...planOptions };
}

/** Picks tile sizes and the split of the P axis for one problem size. Pure; exported for tests. */
export function planFilterGradient(m: number, n: number, p: number, opts: FilterPlanOptions = planOptions): FilterTiling {
  const o = { ...DEFAULTS, ...opts };
  const tn = n <= 16 ? 16 : n <= 32 ? 32 : 64;
  const tm = m <= 32 ? 32 : 64;
  const rm = 4;
  const rn = 4;
  const tk = 16;
  const tilesTotal = Math.max(1, Math.ceil(p / tk));
  const base = Math.ceil(m / tm) * Math.ceil(n / tn);
  let splits = Math.ceil(o.targetWorkgroups / base);
  splits = Math.min(splits, Math.max(1, Math.floor(tilesTotal / o.minTilesPerSplit)), 65535);
  splits = Math.min(splits, Math.max(1, Math.floor(o.maxPartialBytes / (4 * m * n))));
  splits = Math.max(1, splits);
  const tilesPerSplit = Math.ceil(tilesTotal / splits);
  splits = Math.ceil(tilesTotal / tilesPerSplit);
  return { tm, tn, tk, rm, rn, splits, tilesPerSplit };
}

/** Stage 1: partial sums [S, M*N] (or the final [KH, KW, CI, CO] when S = 1). */
class FilterGradGemmProgram implements WebGPUProgramLike {
  variableNames = ['x', 'dy'];
  uniforms = 'M : i32, N : i32, P : i32, OHW : i32, OW : i32, H : i32, W : i32, CI : i32, KWCI : i32, SH : i32, SW : i32, PT : i32, PL : i32, chunk : i32, tilesPerSplit : i32,';
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  dispatchLayout: { x: number[]; y: number[] };
  outputShape: number[];
  shaderKey: string;

  constructor(outputShape: number[], private t: FilterTiling, m: number, n: number) {
    this.outputShape = outputShape;
    // A non-flat layout makes the backend call main() rather than main(globalIndex); the shader
    // computes its own coordinates from workgroupId/localId.
    const r = outputShape.length;
    this.dispatchLayout = { x: [r - 1], y: outputShape.slice(0, r - 1).map((_, i) => i) };
    this.workgroupSize = [t.tn / t.rn, t.tm / t.rm, 1];
    this.dispatch = [Math.ceil(n / t.tn), Math.ceil(m / t.tm), t.splits];
    this.shaderKey = `slideLabConv2DDerFilterGemm_${t.tm}_${t.tn}_${t.tk}_${t.rm}_${t.rn}`;
  }

  getUserCode(): string {
    const { tm, tn, tk, rm, rn } = this.t;
    const wgx = tn / rn;
    const wgy = tm / rm;
    const threads = wgx * wgy;
    const aLoads = (tk * tm) / threads;
    const bLoads = (tk * tn) / threads;
    if (rn !== 4 || !Number.isInteger(aLoads) || !Number.isInteger(bLoads) || threads % tm !== 0 || threads % tn !== 0) {
      throw new Error(`unsupported tiling ${JSON.stringify(this.t)}`);
    }
    // Every thread loads the same A column m (and B column n) at every stage: threads % TM == 0.
    const rows = Array.from({ length: rm }, (_, i) => i);
    const loadsA = Array.from({ length: aLoads }, (_, r) => r);
    const loadsB = Array.from({ length: bLoads }, (_, r) => r);
    return /* wgsl */ `
      var<workgroup> As : array<f32, ${tk * tm}>; // As[k * TM + m]: im2col(x) rows p0..p0+TK, columns m0..m0+TM
      var<workgroup> Bs : array<vec4<f32>, ${(tk * tn) / 4}>; // Bs[k * TN/4 + n/4]: dy rows p0..p0+TK, columns n0..n0+TN

      fn loadA(p : i32, pEnd : i32, mOk : bool, kh : i32, kw : i32, ci : i32) -> f32 {
        if (p >= pEnd || !mOk) { return 0.0; }
        let b = p / uniforms.OHW;
        let rem = p - b * uniforms.OHW;
        let oy = rem / uniforms.OW;
        let ox = rem - oy * uniforms.OW;
        let iy = oy * uniforms.SH - uniforms.PT + kh;
        let ix = ox * uniforms.SW - uniforms.PL + kw;
        if (iy < 0 || iy >= uniforms.H || ix < 0 || ix >= uniforms.W) { return 0.0; }
        return x[((b * uniforms.H + iy) * uniforms.W + ix) * uniforms.CI + ci];
      }

      fn loadB(p : i32, pEnd : i32, n : i32) -> f32 {
        if (p >= pEnd || n >= uniforms.N) { return 0.0; }
        return dy[p * uniforms.N + n];
      }

      fn main() {
        let tid = i32(localIndex);
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let n0 = i32(workgroupId.x) * ${tn};
        let m0 = i32(workgroupId.y) * ${tm};
        let split = i32(workgroupId.z);
        let pBegin = split * uniforms.chunk;
        let pEnd = min(pBegin + uniforms.chunk, uniforms.P);

        // This thread's A column: m = m0 + tid % TM, i.e. filter tap (kh, kw) and input channel ci.
        let am = tid % ${tm};
        let ak = tid / ${tm};
        let m = m0 + am;
        let mOk = m < uniforms.M;
        let kh = m / uniforms.KWCI;
        let kw = (m - kh * uniforms.KWCI) / uniforms.CI;
        let ci = m - kh * uniforms.KWCI - kw * uniforms.CI;
        // This thread's B column: n = n0 + tid % TN.
        let bn = tid % ${tn};
        let bk = tid / ${tn};

        ${rows.map((i) => `var acc${i} = vec4<f32>(0.0);`).join('\n        ')}

        for (var t = 0; t < uniforms.tilesPerSplit; t++) {
          let p0 = pBegin + t * ${tk};
          ${loadsA.map((r) => `As[${r * threads} + tid] = loadA(p0 + ak + ${(r * threads) / tm}, pEnd, mOk, kh, kw, ci);`).join('\n          ')}
          ${loadsB.map((r) => `{
            let e = ${r * threads} + tid;
            let v = loadB(p0 + bk + ${(r * threads) / tn}, pEnd, n0 + bn);
            Bs[e / 4][e % 4] = v;
          }`).join('\n          ')}
          workgroupBarrier();
          for (var k = 0; k < ${tk}; k++) {
            let bv = Bs[k * ${tn / 4} + tx];
            let ab = k * ${tm} + ty * ${rm};
            ${rows.map((i) => `acc${i} = fma(vec4<f32>(As[ab + ${i}]), bv, acc${i});`).join('\n            ')}
          }
          workgroupBarrier();
        }

        let base = split * uniforms.M * uniforms.N;
        let n = n0 + tx * 4;
        ${rows.map((i) => `{
          let mi = m0 + ty * ${rm} + ${i};
          if (mi < uniforms.M) {
            let o = base + mi * uniforms.N + n;
            if (n < uniforms.N) { result[o] = acc${i}.x; }
            if (n + 1 < uniforms.N) { result[o + 1] = acc${i}.y; }
            if (n + 2 < uniforms.N) { result[o + 2] = acc${i}.z; }
            if (n + 3 < uniforms.N) { result[o + 3] = acc${i}.w; }
          }
        }`).join('\n        ')}
      }
    `;
  }
}

/** Stage 2: out[i] = sum over s of partials[s, i]. */
class SplitSumProgram implements WebGPUProgramLike {
  variableNames = ['partials'];
  uniforms = 'splits : i32,';
  workgroupSize: [number, number, number] = [64, 1, 1];
  dispatch: [number, number, number];
  dispatchLayout: { x: number[] };
  outputShape: number[];
  shaderKey = 'slideLabSplitSum';
  size = true;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(outputShape.reduce((a, b) => a * b, 1) / 64), 1, 1];
  }

  getUserCode(): string {
    return /* wgsl */ `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var i = 0; i < uniforms.splits; i++) {
            s = s + partials[i * uniforms.size + index];
          }
          setOutputAtIndex(index, s);
        }
      }
    `;
  }
}

interface FilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** The kernel function; `fallback` handles what it does not (NCHW). */
export function makeConv2DBackpropFilter(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: tf.TensorInfo; dy: tf.TensorInfo };
      backend: WebGPUBackendLike;
      attrs: FilterAttrs;
    };
    const { x, dy } = inputs;
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
    const $dataFormat = tf.backend_util.convertConv2DDataFormat(dataFormat);
    if ($dataFormat !== 'channelsLast' || x.dtype !== 'float32') {
      if (!fallback) throw new Error('slide-lab Conv2DBackpropFilter: only NHWC float32 is implemented');
      return fallback(args);
    }
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, $dataFormat);
    const m = info.filterHeight * info.filterWidth * info.inChannels;
    const n = info.outChannels;
    const p = info.batchSize * info.outHeight * info.outWidth;
    if (p < planOptions.minReduction && fallback) return fallback(args);
    const t = planFilterGradient(m, n, p);
    const uniforms: UniformEntry[] = [
      m, n, p, info.outHeight * info.outWidth, info.outWidth, info.inHeight, info.inWidth, info.inChannels,
      info.filterWidth * info.inChannels, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left,
      t.tilesPerSplit * t.tk, t.tilesPerSplit,
    ].map((v) => ({ type: 'int32', data: [v] }));
    if (t.splits === 1) {
      return backend.runWebGPUProgram(new FilterGradGemmProgram(filterShape, t, m, n), [x, dy], 'float32', uniforms);
    }
    const partials = backend.runWebGPUProgram(new FilterGradGemmProgram([t.splits, m * n], t, m, n), [x, dy], 'float32', uniforms);
    const out = backend.runWebGPUProgram(new SplitSumProgram(filterShape), [partials], 'float32', [{ type: 'int32', data: [t.splits] }]);
    backend.disposeData(partials.dataId);
    return out;
  };
}

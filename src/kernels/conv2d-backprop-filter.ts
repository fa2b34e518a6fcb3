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
// in workgroup memory; each thread accumulates an RM x RN block in registers (the skeleton shared
// with the input gradient, in gemm-tile.ts).
import { tf } from '../core/tf.ts';
import { convGradKernel, OptionStore, type ConvGradAttrs } from './conv-grad-kernel.ts';
import { GemmTileProgram, GemmTileWgsl, type GemmTiling } from './gemm-tile.ts';
import { int32Uniforms, type WebGPUProgramLike } from './webgpu-types.ts';

/** Tile rows along M = KH*KW*CI, columns along N = CO, reduction depth per stage along P. */
export interface FilterTiling extends GemmTiling {
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

const plan = new OptionStore<FilterPlanOptions>({ targetWorkgroups: 256, minTilesPerSplit: 4, maxPartialBytes: 64 * 2 ** 20, minReduction: 128 });

/** Tunes the split heuristic (benchmarks sweep it); returns the options now in force. */
export function setFilterPlanOptions(opts: FilterPlanOptions): Required<FilterPlanOptions> {
  return plan.set(opts);
}

export function getFilterPlanOptions(): Required<FilterPlanOptions> {
  return plan.get();
}

/** Picks tile sizes and the split of the P axis for one problem size. Pure; exported for tests. */
export function planFilterGradient(m: number, n: number, p: number, opts: FilterPlanOptions = plan.current): FilterTiling {
  const o = { ...plan.defaults, ...opts };
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
class FilterGradGemmProgram extends GemmTileProgram {
  variableNames = ['x', 'dy'];
  uniforms = 'M : i32, N : i32, P : i32, OHW : i32, OW : i32, H : i32, W : i32, CI : i32, KWCI : i32, SH : i32, SW : i32, PT : i32, PL : i32, chunk : i32, tilesPerSplit : i32,';

  constructor(outputShape: number[], t: FilterTiling, m: number, n: number) {
    // Workgroup (n-tile, m-tile, split).
    super('slideLabConv2DDerFilterGemm', outputShape, t, n, m, t.splits);
  }

  getUserCode(): string {
    const { tk } = this.t;
    // dy is contiguous along N (= CO). Every thread loads the same A column m (and B column n) at
    // every stage.
    const g = new GemmTileWgsl(this.t, 'n');
    return /* wgsl */ `
      ${g.tiles('im2col(x) rows p0..p0+TK, columns m0..m0+TM', 'dy rows p0..p0+TK, columns n0..n0+TN')}

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
        ${g.prologue()}
        let split = i32(workgroupId.z);
        let pBegin = split * uniforms.chunk;
        let pEnd = min(pBegin + uniforms.chunk, uniforms.P);

        ${g.threadCoords()}
        // This thread's A column m = m0 + am, i.e. filter tap (kh, kw) and input channel ci.
        let m = m0 + am;
        let mOk = m < uniforms.M;
        let kh = m / uniforms.KWCI;
        let kw = (m - kh * uniforms.KWCI) / uniforms.CI;
        let ci = m - kh * uniforms.KWCI - kw * uniforms.CI;

        ${g.accumulators()}

        for (var t = 0; t < uniforms.tilesPerSplit; t++) {
          let p0 = pBegin + t * ${tk};
          ${g.stage((k) => `loadA(p0 + ${k}, pEnd, mOk, kh, kw, ci)`, (k, n) => `loadB(p0 + ${k}, pEnd, n0 + ${n})`)}
        }

        let base = split * uniforms.M * uniforms.N;
        ${g.writeBack('uniforms.M', 'uniforms.N', 'let o = base + mi * uniforms.N + n;')}
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

interface FilterAttrs extends ConvGradAttrs {
  filterShape: [number, number, number, number];
}

/** The kernel function; `fallback` handles what it does not (NCHW, non-float32, short reductions). */
export function makeConv2DBackpropFilter(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return convGradKernel<{ x: tf.TensorInfo; dy: tf.TensorInfo }, FilterAttrs>(
    'Conv2DBackpropFilter', fallback,
    ({ inputs, attrs }) => [inputs.x.shape as [number, number, number, number], attrs.filterShape],
    ({ inputs: { x, dy }, backend, attrs: { filterShape } }, info, stock) => {
      const m = info.filterHeight * info.filterWidth * info.inChannels;
      const n = info.outChannels;
      const p = info.batchSize * info.outHeight * info.outWidth;
      if (p < plan.current.minReduction && stock) return stock();
      const t = planFilterGradient(m, n, p);
      const uniforms = int32Uniforms([
        m, n, p, info.outHeight * info.outWidth, info.outWidth, info.inHeight, info.inWidth, info.inChannels,
        info.filterWidth * info.inChannels, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left,
        t.tilesPerSplit * t.tk, t.tilesPerSplit,
      ]);
      if (t.splits === 1) {
        return backend.runWebGPUProgram(new FilterGradGemmProgram(filterShape, t, m, n), [x, dy], 'float32', uniforms);
      }
      const partials = backend.runWebGPUProgram(new FilterGradGemmProgram([t.splits, m * n], t, m, n), [x, dy], 'float32', uniforms);
      const out = backend.runWebGPUProgram(new SplitSumProgram(filterShape), [partials], 'float32', int32Uniforms([t.splits]));
      backend.disposeData(partials.dataId);
      return out;
    },
  );
}

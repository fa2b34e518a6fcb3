// A tiled, shared-memory WGSL input gradient for tfjs's webgpu backend (kernel
// 'Conv2DBackpropInput', NHWC). It replaces tfjs's stock kernel, which (with tfjs's default
// WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE) gives every dx value (or pair of vec4s) one thread that
// loops over all KH x KW taps x CO channels, rereading the filter from global memory.
//
// dx[b, y, x, ci] = sum over (kh, kw, co) of dy[b, (y + padT - kh) / sh, (x + padL - kw) / sw, co] * W[kh, kw, ci, co]
// where a term exists only if both divisions are exact and land inside dy.
//
// Stride classes: for stride s only the taps kh = (y + padT) mod s (mod s) reach pixel row y, so
// the dx pixels are split into sh x sw classes (cy, cx) = (y mod sh, x mod sw); within a class
// every pixel sees the same taps kh = kh0 + sh*j, kw = kw0 + sw*i, and dy row = i_y + offY - j.
// For a 3x3 stride-2 conv that is 2.25 taps per pixel on average instead of 9 mostly-empty ones.
// Stride 1 is one class holding every tap.
//
// Per class, an implicit GEMM: dx_c [M = B*Hc*Wc, N = CI] = A [M, K] B [K, N] with K = taps x CO,
// A the gathered dy rows (built on the fly while loading tiles, never materialised) and B the
// filter W[kh, kw, :, :]^T. The reduction runs tap by tap, TK channels of CO per stage, so a
// stage reads TK contiguous dy channels of one pixel per thread and one tap's [TK, TN] filter
// slice. Workgroup (n-tile, m-tile, class) stages TK x TM of A and TK x TN of B in workgroup
// memory; each thread accumulates an RM x RN block in registers (the skeleton shared with the
// filter gradient, in gemm-tile.ts). M is long (pixels) and K short, so unlike the filter
// gradient no split-K pass is needed.
import { tf } from '../core/tf.ts';
import { convGradKernel, OptionStore, type ConvGradAttrs } from './conv-grad-kernel.ts';
import { GemmTileProgram, GemmTileWgsl, type GemmTiling } from './gemm-tile.ts';
import { int32Uniforms } from './webgpu-types.ts';

/** Tile rows along M = dx pixels of one stride class, columns along N = CI, reduction depth per stage along CO. */
export interface InputTiling extends GemmTiling {
  /** Stride classes (sh x sw), one dispatch slice each. */
  classes: number;
}

export interface InputPlanOptions {
  /**
   * Below this many multiply-adds (dx pixels x CI x taps per pixel x CO) the stock kernel is
   * used: the whole problem is then a few thousand threads' worth, and our padded tiles and
   * extra pipeline would not pay.
   */
  minMacs?: number;
}

const plan = new OptionStore<InputPlanOptions>({ minMacs: 2 ** 18 });

/** Tunes the threshold (tests set 0 to exercise our kernel everywhere); returns the options now in force. */
export function setInputPlanOptions(opts: InputPlanOptions): Required<InputPlanOptions> {
  return plan.set(opts);
}

export function getInputPlanOptions(): Required<InputPlanOptions> {
  return plan.get();
}

/** The geometry our kernel needs, from tfjs's conv info. */
export interface InputProblem {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
}

/** Largest class's pixel count (M), and the useful multiply-adds over all classes. Pure. */
export function inputGradientWork(p: InputProblem): { maxClassPixels: number; macs: number } {
  const { batch, inHeight: h, inWidth: w, strideHeight: sh, strideWidth: sw } = p;
  // Every pixel sees about (KH/sh) x (KW/sw) taps; the exact count per class depends on padding.
  const macs = batch * h * w * p.inChannels * p.outChannels * (p.filterHeight / sh) * (p.filterWidth / sw);
  return { maxClassPixels: batch * Math.ceil(h / sh) * Math.ceil(w / sw), macs };
}

/** Picks tile sizes for one problem. Pure; exported for tests. */
export function planInputGradient(p: InputProblem): InputTiling {
  const { maxClassPixels } = inputGradientWork(p);
  const n = p.inChannels;
  const tn = n <= 16 ? 16 : n <= 32 ? 32 : 64;
  const tm = maxClassPixels <= 32 ? 32 : 64;
  const tk = p.outChannels <= 8 ? 8 : 16;
  return { tm, tn, tk, rm: 4, rn: 4, classes: p.strideHeight * p.strideWidth };
}

class InputGradGemmProgram extends GemmTileProgram {
  variableNames = ['dy', 'W'];
  uniforms = 'B : i32, IH : i32, IW : i32, CI : i32, OH : i32, OW : i32, CO : i32, KH : i32, KW : i32, SH : i32, SW : i32, PT : i32, PL : i32,';

  constructor(outputShape: number[], t: InputTiling, maxClassPixels: number) {
    // Workgroup (n-tile, m-tile, stride class); N = CI is the output's last axis.
    super('slideLabConv2DDerInputGemm', outputShape, t, outputShape[outputShape.length - 1], maxClassPixels, t.classes);
  }

  getUserCode(): string {
    const { tk } = this.t;
    // W is contiguous along K (= CO). Every thread loads A column m = tid % TM (one dx pixel) and
    // B row k = tid % TK (one output channel) at every stage.
    const g = new GemmTileWgsl(this.t, 'k');
    return /* wgsl */ `
      ${g.tiles('dy channels c0..c0+TK of pixels m0..m0+TM at one tap', 'W[kh, kw, n0..n0+TN, c0..c0+TK], transposed')}
      var<workgroup> wgTaps : i32;

      fn loadA(ok : bool, base : i32, co : i32) -> f32 {
        if (!ok || co >= uniforms.CO) { return 0.0; }
        return dy[base + co];
      }

      fn loadB(base : i32, co : i32, ci : i32) -> f32 {
        if (co >= uniforms.CO || ci >= uniforms.CI) { return 0.0; }
        return W[base + ci * uniforms.CO + co];
      }

      fn main() {
        ${g.prologue()}

        // Stride class (cy, cx): dx rows y = cy + SH*i see taps kh = kh0 + SH*j at dy row i + offY - j.
        let cls = i32(workgroupId.z);
        let cy = cls / uniforms.SW;
        let cx = cls - cy * uniforms.SW;
        let kh0 = (cy + uniforms.PT) % uniforms.SH;
        let kw0 = (cx + uniforms.PL) % uniforms.SW;
        let khc = (uniforms.KH - kh0 + uniforms.SH - 1) / uniforms.SH;
        let kwc = (uniforms.KW - kw0 + uniforms.SW - 1) / uniforms.SW;
        let offY = (cy + uniforms.PT - kh0) / uniforms.SH;
        let offX = (cx + uniforms.PL - kw0) / uniforms.SW;
        let hc = (uniforms.IH - cy + uniforms.SH - 1) / uniforms.SH;
        let wcount = (uniforms.IW - cx + uniforms.SW - 1) / uniforms.SW;
        let mc = uniforms.B * hc * wcount; // pixels in this class
        let wc = max(wcount, 1); // divisors below; mc == 0 masks everything when a class is empty
        let hwc = max(hc * wc, 1);
        // The tap count depends on the class (workgroupId), which WGSL's uniformity analysis cannot
        // see as uniform through tfjs's private copy; loops holding barriers need a uniform bound.
        if (tid == 0) { wgTaps = select(0, khc * kwc, m0 < mc); }
        let taps = workgroupUniformLoad(&wgTaps);

        ${g.threadCoords()}
        // This thread's A row: dx pixel m = m0 + am of the class, as (b, i, j).
        let m = m0 + am;
        let mOk = m < mc;
        let ab = m / hwc;
        let ai = (m - ab * hwc) / wc;
        let aj = m - ab * hwc - ai * wc;

        ${g.accumulators()}

        for (var t = 0; t < taps; t++) {
          let khj = t / kwc;
          let kwj = t - khj * kwc;
          let oy = ai + offY - khj;
          let ox = aj + offX - kwj;
          let aOk = mOk && oy >= 0 && oy < uniforms.OH && ox >= 0 && ox < uniforms.OW;
          let aBase = ((ab * uniforms.OH + oy) * uniforms.OW + ox) * uniforms.CO;
          let bBase = ((kh0 + uniforms.SH * khj) * uniforms.KW + kw0 + uniforms.SW * kwj) * uniforms.CI * uniforms.CO;
          for (var c0 = 0; c0 < uniforms.CO; c0 += ${tk}) {
            ${g.stage((k) => `loadA(aOk, aBase, c0 + ${k})`, (k, n) => `loadB(bBase, c0 + ${k}, n0 + ${n})`)}
          }
        }

        ${g.writeBack('mc', 'uniforms.CI', `let b = mi / hwc;
            let ii = (mi - b * hwc) / wc;
            let jj = mi - b * hwc - ii * wc;
            let o = ((b * uniforms.IH + cy + uniforms.SH * ii) * uniforms.IW + cx + uniforms.SW * jj) * uniforms.CI + n;`)}
      }
    `;
  }
}

interface InputAttrs extends ConvGradAttrs {
  inputShape: [number, number, number, number];
}

/** The kernel function; `fallback` handles what it does not (NCHW, non-float32, tiny problems). */
export function makeConv2DBackpropInput(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return convGradKernel<{ dy: tf.TensorInfo; filter: tf.TensorInfo }, InputAttrs>(
    'Conv2DBackpropInput', fallback,
    ({ inputs, attrs }) => [attrs.inputShape, inputs.filter.shape as [number, number, number, number]],
    ({ inputs: { dy, filter }, backend }, info, stock) => {
      const problem: InputProblem = {
        batch: info.batchSize, inHeight: info.inHeight, inWidth: info.inWidth, inChannels: info.inChannels, outChannels: info.outChannels,
        filterHeight: info.filterHeight, filterWidth: info.filterWidth, strideHeight: info.strideHeight, strideWidth: info.strideWidth,
      };
      const work = inputGradientWork(problem);
      if (work.macs < plan.current.minMacs && stock) return stock();
      const t = planInputGradient(problem);
      const uniforms = int32Uniforms([
        info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth, info.outChannels,
        info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left,
      ]);
      return backend.runWebGPUProgram(new InputGradGemmProgram(info.inShape, t, work.maxClassPixels), [dy, filter], 'float32', uniforms);
    },
  );
}

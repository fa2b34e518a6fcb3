// The tiled, register-blocked GEMM skeleton our conv-gradient kernels share:
//   C [M, N] = A^T B, i.e. C[m, n] = sum over k of A[k, m] * B[k, n], with A [K, M] and B [K, N],
// where each kernel says how A and B are gathered from its tensors (im2col of x, shifted dy rows,
// filter slices; never materialised) and where C lands in its output.
//
// Workgroup (n-tile, m-tile, z) owns the C tile rows m0..m0+TM, columns n0..n0+TN, and runs
// TK-deep stages: its threads load the A tile [TK, TM] and the B tile [TK, TN] into workgroup
// memory, then each accumulates an RM x RN block of C in registers (RN = 4: one vec4 per row).
// The workgroup is (TN/RN) x (TM/RM) threads; thread (tx, ty) owns C rows m0 + ty*RM + i
// (i < RM), columns n0 + tx*4 .. n0 + tx*4 + 3. What z means (split-K chunk, stride class) and how
// stages are sequenced over K is the kernel's business.
//
// The WGSL pieces below assume the names they document; each kernel composes them inside its own
// main() with its own loadA/loadB functions and reduction loop.
import type { WebGPUProgramLike } from './webgpu-types.ts';

/** Tile sizes: TM x TN of C per workgroup, TK reduction steps per stage, RM x RN per thread. */
export interface GemmTiling {
  tm: number;
  tn: number;
  tk: number;
  rm: number;
  rn: number;
}

/**
 * The axis along which B's source tensor is contiguous in memory. Consecutive threads load
 * consecutive elements along it (coalesced reads), and each thread keeps that coordinate for all
 * its loads of a stage, walking the other axis:
 * - 'n': dy [P, N] in the filter gradient; thread (bk, bn) = (tid / TN, tid % TN), k steps by threads/TN.
 * - 'k': W [.., CI, CO] in the input gradient (k = CO); thread (bk, bn) = (tid % TK, tid / TK), n steps by threads/TK.
 */
export type BContiguous = 'n' | 'k';

/**
 * Base class of the GEMM programs: a non-flat dispatch layout (so tfjs calls main() rather than
 * main(globalIndex), and the shader computes its own coordinates from workgroupId/localId), one
 * (TN/RN) x (TM/RM) workgroup per C tile, and a shaderKey `${name}_TM_TN_TK_RM_RN`.
 */
export abstract class GemmTileProgram implements WebGPUProgramLike {
  abstract variableNames: string[];
  abstract uniforms: string;
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  dispatchLayout: { x: number[]; y: number[] };
  outputShape: number[];
  shaderKey: string;

  /** `n` and `m`: the largest C extent along N and M; `z`: the third dispatch dimension. */
  constructor(name: string, outputShape: number[], protected t: GemmTiling, n: number, m: number, z: number) {
    this.outputShape = outputShape;
    const r = outputShape.length;
    this.dispatchLayout = { x: [r - 1], y: outputShape.slice(0, r - 1).map((_, i) => i) };
    this.workgroupSize = [t.tn / t.rn, t.tm / t.rm, 1];
    this.dispatch = [Math.ceil(n / t.tn), Math.ceil(m / t.tm), z];
    this.shaderKey = `${name}_${t.tm}_${t.tn}_${t.tk}_${t.rm}_${t.rn}`;
  }

  abstract getUserCode(): string;
}

/**
 * WGSL generators for one tiling. Constructing it checks the tiling: RN = 4, the A and B tiles
 * split evenly over the threads, and every thread keeps one A column m = tid % TM (threads % TM
 * == 0) and one B coordinate along `bContiguous` (threads % TN or threads % TK == 0) for a whole
 * stage. Throws on an unsupported tiling.
 */
export class GemmTileWgsl {
  readonly threads: number;
  /** Loads per thread per stage of the A and B tiles. */
  readonly aLoads: number;
  readonly bLoads: number;
  private readonly rows: number[];

  constructor(readonly t: GemmTiling, readonly bContiguous: BContiguous) {
    const { tm, tn, tk, rm, rn } = t;
    this.threads = (tn / rn) * (tm / rm);
    this.aLoads = (tk * tm) / this.threads;
    this.bLoads = (tk * tn) / this.threads;
    const bKeep = bContiguous === 'n' ? tn : tk;
    if (rn !== 4 || !Number.isInteger(this.aLoads) || !Number.isInteger(this.bLoads) || this.threads % tm !== 0 || this.threads % bKeep !== 0) {
      throw new Error(`unsupported tiling ${JSON.stringify(t)}`);
    }
    this.rows = Array.from({ length: rm }, (_, i) => i);
  }

  /**
   * Module-scope workgroup tiles: As[k * TM + m] (f32) and Bs[k * TN/4 + n/4] (vec4 of 4 adjacent
   * n). `aNote`/`bNote` say what the kernel stages there (comments only).
   */
  tiles(aNote: string, bNote: string): string {
    const { tm, tn, tk } = this.t;
    return `var<workgroup> As : array<f32, ${tk * tm}>; // As[k * TM + m]: ${aNote}
      var<workgroup> Bs : array<vec4<f32>, ${(tk * tn) / 4}>; // Bs[k * TN/4 + n/4]: ${bNote}`;
  }

  /** Declares tid, tx, ty and the tile origin n0, m0 (from workgroupId.x, .y). Start of main(). */
  prologue(): string {
    return `let tid = i32(localIndex);
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let n0 = i32(workgroupId.x) * ${this.t.tn};
        let m0 = i32(workgroupId.y) * ${this.t.tm};`;
  }

  /**
   * Declares this thread's fixed tile coordinates: A column am = tid % TM with first A row
   * ak = tid / TM, and B (bk, bn) as `bContiguous` says.
   */
  threadCoords(): string {
    const { tm, tn, tk } = this.t;
    const b = this.bContiguous === 'n'
      ? `let bn = tid % ${tn};
        let bk = tid / ${tn};`
      : `let bk = tid % ${tk};
        let bn = tid / ${tk};`;
    return `let am = tid % ${tm};
        let ak = tid / ${tm};
        ${b}`;
  }

  /** Declares the RM accumulators acc0..acc{RM-1}: vec4 of C columns n..n+3. */
  accumulators(): string {
    return this.rows.map((i) => `var acc${i} = vec4<f32>(0.0);`).join('\n        ');
  }

  /**
   * One stage: load the A and B tiles, barrier, accumulate, barrier. `loadA(k)` is a WGSL f32
   * expression for A[k0 + k, m0 + am] given the tile row k as a WGSL expression; `loadB(k, n)`
   * one for B[k0 + k, n0 + n]. Both return 0 outside the matrices. Uses the names from
   * prologue() and threadCoords(); must sit in uniform control flow (it holds barriers).
   */
  stage(loadA: (k: string) => string, loadB: (k: string, n: string) => string): string {
    const { tm, tn, tk, rm } = this.t;
    const { threads, aLoads, bLoads } = this;
    // Thread tid stores B element e = k * TN + n; Bs holds vec4s, so e lands in Bs[e / 4][e % 4].
    const bStore = this.bContiguous === 'n'
      ? `let e = r * ${threads} + tid; // = (bk + r * ${threads / tn}) * TN + bn
            Bs[e / 4][e % 4] = ${loadB(`bk + r * ${threads / tn}`, 'bn')};`
      : `let nn = bn + r * ${threads / tk};
            let e = bk * ${tn} + nn;
            Bs[e / 4][e % 4] = ${loadB('bk', 'nn')};`;
    return `// Loops, not unrolled: SwiftShader's compiler took minutes on the unrolled form of some tilings.
          for (var r = 0; r < ${aLoads}; r++) {
            As[r * ${threads} + tid] = ${loadA(`ak + r * ${threads / tm}`)};
          }
          for (var r = 0; r < ${bLoads}; r++) {
            ${bStore}
          }
          workgroupBarrier();
          for (var k = 0; k < ${tk}; k++) {
            let bv = Bs[k * ${tn / 4} + tx];
            let ab4 = k * ${tm} + ty * ${rm};
            ${this.rows.map((i) => `acc${i} = fma(vec4<f32>(As[ab4 + ${i}]), bv, acc${i});`).join('\n            ')}
          }
          workgroupBarrier();`;
  }

  /**
   * Writes the accumulators: C[mi, n..n+3] for this thread's rows mi with mi < `mLimit`, columns
   * below `nLimit` (WGSL i32 expressions). `offset` is WGSL statements that, given mi and n,
   * declare `o`, the index in `result` of C[mi, n]; C[mi, n + j] must be at o + j.
   */
  writeBack(mLimit: string, nLimit: string, offset: string): string {
    const { rm } = this.t;
    return `let n = n0 + tx * 4;
        ${this.rows.map((i) => `{
          let mi = m0 + ty * ${rm} + ${i};
          if (mi < ${mLimit}) {
            ${offset}
            if (n < ${nLimit}) { result[o] = acc${i}.x; }
            if (n + 1 < ${nLimit}) { result[o + 1] = acc${i}.y; }
            if (n + 2 < ${nLimit}) { result[o + 2] = acc${i}.z; }
            if (n + 3 < ${nLimit}) { result[o + 3] = acc${i}.w; }
          }
        }`).join('\n        ')}`;
  }
}

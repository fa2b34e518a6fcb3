// Resizing a ViT's absolute position embeddings to another patch grid, exactly as timm does when
// a checkpoint meets a new image size (`resample_abs_pos_embed`: F.interpolate(mode='bicubic',
// antialias=True, align_corners=False)). Pure: no tfjs.
//
// With antialias=True PyTorch takes its antialiased ("PIL-style") separable path for upsampling
// as well as for downsampling: a Keys cubic with a = -0.5 (not the -0.75 of plain bicubic), the
// support scaled by max(1, in / out), taps restricted to the input (no border replication) and
// the weights normalised to sum 1. Checked against PyTorch-made fixtures (vit.test.ts).

/** Keys' cubic convolution kernel with a = -0.5 (PyTorch's HelperInterpCubic::aa_filter). */
function cubicAA(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

interface Taps {
  start: number[];
  weights: number[][];
}

/** Per output index: the first input index and the normalised weights (PyTorch's _compute_weights_aa). */
function tapsAA(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize; // area_pixel_compute_scale, align_corners=False, no scale factor
  const support = scale >= 1 ? 2 * scale : 2; // interp_size / 2 = 2 for bicubic
  const invscale = scale >= 1 ? 1 / scale : 1;
  const start: number[] = [];
  const weights: number[][] = [];
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const w: number[] = [];
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const v = cubicAA((j + xmin - center + 0.5) * invscale);
      w.push(v);
      total += v;
    }
    if (total !== 0) for (let j = 0; j < xsize; j++) w[j] /= total;
    start.push(xmin);
    weights.push(w);
  }
  return { start, weights };
}

/**
 * The patch part of a position table [g*g, D] (row index y*g + x) resized to [g'*g', D], like
 * PyTorch's F.interpolate(mode='bicubic', antialias=True, align_corners=False) on [1, D, g, g].
 * Separable: along x, then along y, in float64.
 */
export function resizePosEmbed(src: Float32Array, fromGrid: number, toGrid: number, dim: number): Float32Array {
  if (src.length !== fromGrid * fromGrid * dim) {
    throw new Error(`resizePosEmbed: ${src.length} values are not a ${fromGrid}x${fromGrid} grid of ${dim}`);
  }
  if (fromGrid === toGrid) return Float32Array.from(src);
  const taps = tapsAA(fromGrid, toGrid);
  // Along x: [g, g, D] -> [g, g', D].
  const mid = new Float64Array(fromGrid * toGrid * dim);
  for (let y = 0; y < fromGrid; y++) {
    for (let x = 0; x < toGrid; x++) {
      const out = (y * toGrid + x) * dim;
      const w = taps.weights[x];
      for (let j = 0; j < w.length; j++) {
        const from = (y * fromGrid + taps.start[x] + j) * dim;
        for (let c = 0; c < dim; c++) mid[out + c] += w[j] * src[from + c];
      }
    }
  }
  // Along y: [g, g', D] -> [g', g', D].
  const acc = new Float64Array(toGrid * toGrid * dim);
  for (let y = 0; y < toGrid; y++) {
    const w = taps.weights[y];
    for (let x = 0; x < toGrid; x++) {
      const out = (y * toGrid + x) * dim;
      for (let j = 0; j < w.length; j++) {
        const from = ((taps.start[y] + j) * toGrid + x) * dim;
        for (let c = 0; c < dim; c++) acc[out + c] += w[j] * mid[from + c];
      }
    }
  }
  return Float32Array.from(acc);
}

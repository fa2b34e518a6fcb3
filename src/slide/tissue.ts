// Tissue detection on a low-resolution read of the slide: grayscale, box blur, Otsu threshold,
// then drop low-saturation pixels (white or grey background, dust) and pen ink (green, blue or
// black marker). Pure functions over rasters, plus detectTissue() which picks the level to read.
import { throwIfAborted } from './errors.ts';
import type { SlideSource } from './source.ts';
import { downsampleBox } from './resample.ts';

export interface TissueOptions {
  /** Box blur radius in mask pixels (applied twice: close to a Gaussian). */
  blurRadius?: number;
  /** Minimum HSV saturation (0..1) of tissue after blurring. */
  minSaturation?: number;
  /** The Otsu threshold is clamped into this gray range. */
  thresholdRange?: [number, number];
  /** Drop green, blue and black marker ink. */
  penFilter?: boolean;
  /** A fixed gray threshold (tissue is darker) instead of Otsu's; 0 or absent: Otsu's, clamped into thresholdRange. */
  threshold?: number;
}

/** A binary tissue mask. `data` is [height, width], 1 = tissue. */
export interface TissueMask {
  width: number;
  height: number;
  data: Uint8Array;
  /** Level-0 pixels per mask pixel, per axis. */
  downsampleX: number;
  downsampleY: number;
  /** Gray threshold used (tissue is darker). */
  threshold: number;
  /** Fraction of mask pixels that are tissue. */
  fraction: number;
  /** Every how many blocks (per axis) were read when the slide had no level near the mask's resolution (1: all). */
  sampleStride?: number;
}

/** Rec. 601 luma of RGB [n, 3] -> [n]. */
export function grayscale(rgb: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rgb[i * 3] * 299 + rgb[i * 3 + 1] * 587 + rgb[i * 3 + 2] * 114 + 500) / 1000;
  return out;
}

/** HSV saturation of RGB [n, 3], scaled to 0..255 -> [n]. */
export function saturation(rgb: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = rgb[i * 3], g = rgb[i * 3 + 1], b = rgb[i * 3 + 2];
    const max = Math.max(r, g, b);
    out[i] = max === 0 ? 0 : Math.round(((max - Math.min(r, g, b)) * 255) / max);
  }
  return out;
}

/** Separable box blur of [h, w] with radius r (edges clamp), applied twice. */
export function boxBlur(src: Uint8Array, w: number, h: number, r: number): Uint8Array {
  if (r <= 0) return src.slice();
  let a = src.slice();
  const b = new Uint8Array(src.length);
  const size = 2 * r + 1;
  for (let pass = 0; pass < 2; pass++) {
    for (let y = 0; y < h; y++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += a[y * w + Math.min(w - 1, Math.max(0, k))];
      for (let x = 0; x < w; x++) {
        b[y * w + x] = Math.round(s / size);
        s += a[y * w + Math.min(w - 1, x + r + 1)] - a[y * w + Math.max(0, x - r)];
      }
    }
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += b[Math.min(h - 1, Math.max(0, k)) * w + x];
      for (let y = 0; y < h; y++) {
        a[y * w + x] = Math.round(s / size);
        s += b[Math.min(h - 1, y + r + 1) * w + x] - b[Math.max(0, y - r) * w + x];
      }
    }
  }
  return a;
}

/** Otsu's threshold of 8-bit values: the t maximising between-class variance of (<= t, > t). */
export function otsu(values: Uint8Array): number {
  const hist = new Float64Array(256);
  for (const v of values) hist[v]++;
  const total = values.length;
  let sumAll = 0;
  for (let t = 0; t < 256; t++) sumAll += t * hist[t];
  let wB = 0, sumB = 0, best = 0, bestT = 127;
  for (let t = 0; t < 256; t++) {
    wB += hist[t];
    if (wB === 0) continue;
    const wF = total - wB;
    if (wF === 0) break;
    sumB += t * hist[t];
    const mB = sumB / wB, mF = (sumAll - sumB) / wF;
    const between = wB * wF * (mB - mF) ** 2;
    if (between > best) { best = between; bestT = t; }
  }
  return bestT;
}

/**
 * Marker ink, absent from H&E and IHC stains: green, blue, or black (dark and near-neutral;
 * hematoxylin-dense nuclei stay purple, red-minus-green well above the ink's spread).
 */
export function isPen(r: number, g: number, b: number): boolean {
  const max = Math.max(r, g, b), min = Math.min(r, g, b);
  return (g > r + 15 && g > b + 15) || (b > r + 60 && b > g + 40) || (max < 80 && max - min < 30);
}

/** Tissue mask of RGB [h, w, 3] (a low-resolution view of a slide). */
export function tissueMaskOf(rgb: Uint8Array, w: number, h: number, options: TissueOptions = {}): { data: Uint8Array; threshold: number; fraction: number } {
  const { blurRadius = 2, minSaturation = 0.07, thresholdRange = [170, 235], penFilter = true } = options;
  const n = w * h;
  const gray = boxBlur(grayscale(rgb, n), w, h, blurRadius);
  const sat = boxBlur(saturation(rgb, n), w, h, blurRadius);
  const threshold = options.threshold ? options.threshold : Math.min(thresholdRange[1], Math.max(thresholdRange[0], otsu(gray)));
  const minSat = minSaturation * 255;
  const data = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (gray[i] > threshold || sat[i] < minSat) continue;
    if (penFilter && isPen(rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2])) continue;
    data[i] = 1;
    count++;
  }
  return { data, threshold, fraction: n ? count / n : 0 };
}

/** Picks a mask resolution: about `target` level-0 px per mask px, long side at most `maxSide`. */
export function maskDownsample(width0: number, height0: number, target = 16, maxSide = 2048): number {
  return Math.max(target, Math.max(width0, height0) / maxSide, 1);
}

/** Blocks readLowRes reads at most, when no level lies near the wanted resolution (then it samples). */
export const MAX_LOWRES_BLOCKS = 1024;

export interface LowRes {
  width: number;
  height: number;
  /** RGB [height, width, 3]. */
  data: Uint8Array;
  downsampleX: number;
  downsampleY: number;
  /** 1 when every block was read; s when only every s-th block per axis was (the rest copy their group's). */
  sampleStride: number;
}

/**
 * Reads the slide at about `downsample` level-0 px per pixel: from the finest level not coarser
 * than that, box-averaged by an integer factor f, in blocks (memory stays bounded). When that level
 * is at least 4x finer than wanted and would take more than `maxBlocks` blocks (a slide without a
 * pyramid), it reads a strided subset: blocks of about one stored tile, every s-th per axis, each
 * standing for the s x s group around it, so the cost stays about `maxBlocks` blocks whatever the size.
 */
export async function readLowRes(source: SlideSource, downsample: number, options: { signal?: AbortSignal; blockSize?: number; maxBlocks?: number } = {}): Promise<LowRes> {
  const level = [...source.levels].reverse().find((l) => l.downsample <= downsample * 1.0001) ?? source.levels[0];
  const f = Math.max(1, Math.round(downsample / level.downsample));
  const width = Math.ceil(level.width / f), height = Math.ceil(level.height / f);
  const data = new Uint8Array(width * height * 3);
  const l0 = source.levels[0];
  const result = (sampleStride: number): LowRes => ({ width, height, data, downsampleX: l0.width / (level.width / f), downsampleY: l0.height / (level.height / f), sampleStride });
  const read = async (x: number, y: number, w: number, h: number) => {
    throwIfAborted(options.signal, source.name);
    return downsampleBox((await source.readRegion(level.index, x, y, w, h, options)).data, w, h, f); // [ceil(h/f), ceil(w/f), 3]
  };
  // Blocks about one stored tile (strip) in size, multiples of f so that boxes never straddle blocks.
  const cellW = f * Math.max(1, Math.round((level.tiled ? level.tileWidth : level.width) / f));
  const cellH = f * Math.max(1, Math.round(level.tileHeight / f));
  const ncx = Math.ceil(level.width / cellW), ncy = Math.ceil(level.height / cellH);
  const maxBlocks = options.maxBlocks ?? MAX_LOWRES_BLOCKS;
  if (f >= 4 && ncx * ncy > maxBlocks) {
    const sx = ncx === 1 ? 1 : Math.ceil(Math.sqrt((ncx * ncy) / maxBlocks));
    const sy = ncx === 1 ? Math.ceil(ncy / maxBlocks) : sx;
    for (let gy = 0; gy < ncy; gy += sy) {
      for (let gx = 0; gx < ncx; gx += sx) {
        // The group's middle block is read; every block of the group copies it (tiled if shorter).
        const cx = Math.min(ncx - 1, gx + (sx >> 1)), cy = Math.min(ncy - 1, gy + (sy >> 1));
        const x = cx * cellW, y = cy * cellH;
        const small = await read(x, y, Math.min(cellW, level.width - x), Math.min(cellH, level.height - y));
        const ox0 = (gx * cellW) / f, oy0 = (gy * cellH) / f;
        const ox1 = Math.min(width, ((gx + sx) * cellW) / f), oy1 = Math.min(height, ((gy + sy) * cellH) / f);
        const bw = cellW / f, bh = cellH / f;
        for (let oy = oy0; oy < oy1; oy++) {
          const sj = Math.min(small.height - 1, (oy - oy0) % bh);
          for (let ox = ox0; ox < ox1; ox++) {
            const si = Math.min(small.width - 1, (ox - ox0) % bw);
            const s = (sj * small.width + si) * 3, d = (oy * width + ox) * 3;
            data[d] = small.data[s]; data[d + 1] = small.data[s + 1]; data[d + 2] = small.data[s + 2];
          }
        }
      }
    }
    return result(Math.max(sx, sy));
  }
  // Blocks of at most ~2048 x 2048 level pixels, multiples of f.
  const step = f * Math.max(1, Math.floor((options.blockSize ?? 2048) / f));
  for (let y = 0; y < level.height; y += step) {
    for (let x = 0; x < level.width; x += step) {
      const w = Math.min(step, level.width - x), h = Math.min(step, level.height - y);
      const small = await read(x, y, w, h);
      for (let row = 0; row < small.height; row++) {
        data.set(small.data.subarray(row * small.width * 3, (row + 1) * small.width * 3), ((y / f + row) * width + x / f) * 3);
      }
    }
  }
  return result(1);
}

/** Tissue mask of a slide, read at a low resolution. */
export async function detectTissue(source: SlideSource, options: TissueOptions & { signal?: AbortSignal; downsample?: number; blockSize?: number; maxBlocks?: number } = {}): Promise<TissueMask> {
  const l0 = source.levels[0];
  const low = await readLowRes(source, options.downsample ?? maskDownsample(l0.width, l0.height), options);
  const mask = tissueMaskOf(low.data, low.width, low.height, options);
  return { width: low.width, height: low.height, downsampleX: low.downsampleX, downsampleY: low.downsampleY, ...mask, sampleStride: low.sampleStride };
}

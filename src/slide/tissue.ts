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
  const threshold = Math.min(thresholdRange[1], Math.max(thresholdRange[0], otsu(gray)));
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

/**
 * Reads the slide at about `downsample` level-0 px per pixel: from the finest level not coarser
 * than that, box-averaged by an integer factor, in blocks (memory stays bounded).
 */
export async function readLowRes(source: SlideSource, downsample: number, options: { signal?: AbortSignal; blockSize?: number } = {}): Promise<{ width: number; height: number; data: Uint8Array; downsampleX: number; downsampleY: number }> {
  const level = [...source.levels].reverse().find((l) => l.downsample <= downsample * 1.0001) ?? source.levels[0];
  const f = Math.max(1, Math.round(downsample / level.downsample));
  const width = Math.ceil(level.width / f), height = Math.ceil(level.height / f);
  const data = new Uint8Array(width * height * 3);
  // Blocks of at most ~2048 x 2048 level pixels, multiples of f so that boxes never straddle blocks.
  const step = f * Math.max(1, Math.floor((options.blockSize ?? 2048) / f));
  for (let y = 0; y < level.height; y += step) {
    for (let x = 0; x < level.width; x += step) {
      throwIfAborted(options.signal, source.name);
      const w = Math.min(step, level.width - x), h = Math.min(step, level.height - y);
      const small = downsampleBox((await source.readRegion(level.index, x, y, w, h, options)).data, w, h, f);
      for (let row = 0; row < small.height; row++) {
        data.set(small.data.subarray(row * small.width * 3, (row + 1) * small.width * 3), ((y / f + row) * width + x / f) * 3);
      }
    }
  }
  const l0 = source.levels[0];
  return { width, height, data, downsampleX: l0.width / (level.width / f), downsampleY: l0.height / (level.height / f) };
}

/** Tissue mask of a slide, read at a low resolution. */
export async function detectTissue(source: SlideSource, options: TissueOptions & { signal?: AbortSignal; downsample?: number; blockSize?: number } = {}): Promise<TissueMask> {
  const l0 = source.levels[0];
  const low = await readLowRes(source, options.downsample ?? maskDownsample(l0.width, l0.height), options);
  const mask = tissueMaskOf(low.data, low.width, low.height, options);
  return { width: low.width, height: low.height, downsampleX: low.downsampleX, downsampleY: low.downsampleY, ...mask };
}

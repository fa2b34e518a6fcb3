// Synthetic slide scenes for fixtures and the demo data set: irregular tissue blobs textured with a
// real histology image on a near-white background, and optional "lesions" (dense clusters of dark
// purple nuclei). Deterministic from a seeded PRNG. All rasters are RGB [height, width, 3].
import { downsampleBox } from '../resample.ts';

export interface Texture {
  width: number;
  height: number;
  data: Uint8Array;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A lobed disc: radius(θ) = r (1 + Σ amp sin(freq θ + phase)). Level-0 pixels. */
export interface TissueBlob {
  cx: number;
  cy: number;
  r: number;
  lobes: { amp: number; freq: number; phase: number }[];
  /** Texture offset, so blobs do not all look alike. */
  ox: number;
  oy: number;
}

export function randomBlob(random: () => number, cx: number, cy: number, r: number): TissueBlob {
  const lobes = Array.from({ length: 3 }, (_, i) => ({ amp: 0.08 + random() * 0.12, freq: 2 + i + Math.floor(random() * 3), phase: random() * 6.283 }));
  return { cx, cy, r, lobes, ox: Math.floor(random() * 4096), oy: Math.floor(random() * 4096) };
}

function blobRadius(b: TissueBlob, theta: number): number {
  let f = 1;
  for (const l of b.lobes) f += l.amp * Math.sin(l.freq * theta + l.phase);
  return b.r * f;
}

/** Mirror-tiled texture lookup (no seams). */
function mirror(v: number, n: number): number {
  const m = ((v % (2 * n)) + 2 * n) % (2 * n);
  return m < n ? m : 2 * n - 1 - m;
}

export const BACKGROUND = 242;

/** Paints blobs onto a background; returns RGB [height, width, 3]. */
export function paintScene(width: number, height: number, blobs: TissueBlob[], texture: Texture): Uint8Array {
  const out = new Uint8Array(width * height * 3).fill(BACKGROUND);
  for (const b of blobs) {
    const reach = b.r * (1 + b.lobes.reduce((s, l) => s + l.amp, 0));
    const y0 = Math.max(0, Math.floor(b.cy - reach)), y1 = Math.min(height, Math.ceil(b.cy + reach));
    const x0 = Math.max(0, Math.floor(b.cx - reach)), x1 = Math.min(width, Math.ceil(b.cx + reach));
    for (let y = y0; y < y1; y++) {
      const ty = mirror(y + b.oy, texture.height);
      for (let x = x0; x < x1; x++) {
        const dx = x - b.cx, dy = y - b.cy;
        const d = Math.sqrt(dx * dx + dy * dy);
        if (d > reach) continue;
        const edge = blobRadius(b, Math.atan2(dy, dx)) - d;
        if (edge <= 0) continue;
        const t = (ty * texture.width + mirror(x + b.ox, texture.width)) * 3;
        const o = (y * width + x) * 3;
        // Feather the last 6 px into the background.
        const a = edge >= 6 ? 1 : edge / 6;
        out[o] = out[o] * (1 - a) + texture.data[t] * a;
        out[o + 1] = out[o + 1] * (1 - a) + texture.data[t + 1] * a;
        out[o + 2] = out[o + 2] * (1 - a) + texture.data[t + 2] * a;
      }
    }
  }
  return out;
}

/**
 * Paints a lesion into the disc inscribed in [x, x+size) x [y, y+size): densely packed dark purple nuclei
 * (radius 3-6 px) over a darker, pinker stroma. Distinct from the IHC texture by colour and density.
 */
export function paintLesion(rgb: Uint8Array, width: number, height: number, x: number, y: number, size: number, random: () => number): void {
  const x1 = Math.min(width, x + size), y1 = Math.min(height, y + size);
  const c = size / 2, r2 = (size / 2) ** 2;
  const inside = (xx: number, yy: number) => (xx - x - c) ** 2 + (yy - y - c) ** 2 <= r2;
  for (let yy = Math.max(0, y); yy < y1; yy++) {
    for (let xx = Math.max(0, x); xx < x1; xx++) {
      if (!inside(xx, yy)) continue;
      const o = (yy * width + xx) * 3;
      rgb[o] = 0.5 * rgb[o] + 0.5 * 190;
      rgb[o + 1] = 0.5 * rgb[o + 1] + 0.5 * 120;
      rgb[o + 2] = 0.5 * rgb[o + 2] + 0.5 * 170;
    }
  }
  const nuclei = Math.round((size * size) / 110);
  for (let k = 0; k < nuclei; k++) {
    const cx = x + random() * size, cy = y + random() * size, r = 3 + random() * 3;
    const shade = random() * 30;
    for (let yy = Math.max(0, Math.floor(cy - r)); yy < Math.min(y1, Math.ceil(cy + r)); yy++) {
      for (let xx = Math.max(0, Math.floor(cx - r)); xx < Math.min(x1, Math.ceil(cx + r)); xx++) {
        if ((xx - cx) ** 2 + (yy - cy) ** 2 > r * r || !inside(xx, yy)) continue;
        const o = (yy * width + xx) * 3;
        rgb[o] = 60 + shade;
        rgb[o + 1] = 25 + shade / 2;
        rgb[o + 2] = 100 + shade;
      }
    }
  }
}

/** Box-downsamples RGB [h, w, 3] by an integer factor (edge blocks average what they have). */
export function downsampleRgb(rgb: Uint8Array, width: number, height: number, factor: number): { width: number; height: number; data: Uint8Array } {
  return downsampleBox(rgb, width, height, factor);
}

/** Cuts RGB [h, w, 3] into stored tiles in row-major order, padding edge tiles with edge pixels. */
export function cutTiles(rgb: Uint8Array, width: number, height: number, tw: number, th: number): Uint8Array[] {
  const tiles: Uint8Array[] = [];
  for (let ty = 0; ty < Math.ceil(height / th); ty++) {
    for (let tx = 0; tx < Math.ceil(width / tw); tx++) {
      const t = new Uint8Array(tw * th * 3);
      for (let y = 0; y < th; y++) {
        const sy = Math.min(height - 1, ty * th + y);
        for (let x = 0; x < tw; x++) {
          const sx = Math.min(width - 1, tx * tw + x);
          t.set(rgb.subarray((sy * width + sx) * 3, (sy * width + sx) * 3 + 3), (y * tw + x) * 3);
        }
      }
      tiles.push(t);
    }
  }
  return tiles;
}

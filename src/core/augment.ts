// Tile preprocessing and augmentation on the CPU side, keyed by (seed, step, slot) so that one
// rank and N ranks see identical inputs (docs/DESIGN.md, contract 1). Pure JS: identical on every backend.
import { Rng, Stream } from './rng.ts';
import type { Config } from './config.ts';

/** Per-channel input statistics: (x / 255 - mean) / std. ImageNet's by default (config.encoder.mean/std). */
export interface InputNorm {
  mean: number[];
  std: number[];
}

export interface TileAugment {
  flip: boolean;
  /** Number of 90-degree counter-clockwise rotations, 0..3. */
  rot: number;
  blur: boolean;
}

export function augmentFor(cfg: Config, step: number, slot: number): TileAugment {
  const rng = new Rng(cfg.seed, Stream.augment, step, slot);
  const flip = rng.next() < 0.5;
  const rot = rng.int(4);
  const blur = rng.next() < cfg.augment.blur;
  return { flip: cfg.augment.flip && flip, rot: cfg.augment.rot90 ? rot : 0, blur };
}

export const NO_AUGMENT: TileAugment = { flip: false, rot: 0, blur: false };

/**
 * src: [S, S, 3] RGB bytes of one tile -> writes [S, S, 3] normalised float32 into dst at offset.
 * Output pixel (y, x) reads the source at the inverse of (flip, then rotate).
 */
export function preprocessTile(src: Uint8Array, size: number, aug: TileAugment, norm: InputNorm, dst: Float32Array, offset: number): void {
  const s = size;
  const scale = norm.std.map((sd) => 1 / (255 * sd)); // x / 255 / std
  const shift = norm.mean.map((m, c) => m / norm.std[c]);
  const tmp = aug.blur ? blur3x3(src, s) : src;
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      let sx = x;
      let sy = y;
      for (let r = 0; r < aug.rot; r++) [sx, sy] = [s - 1 - sy, sx];
      if (aug.flip) sx = s - 1 - sx;
      const si = (sy * s + sx) * 3;
      const di = offset + (y * s + x) * 3;
      for (let c = 0; c < 3; c++) dst[di + c] = tmp[si + c] * scale[c] - shift[c];
    }
  }
}

/** Separable [1 2 1]/4 Gaussian blur, edges clamped. [S, S, 3] -> [S, S, 3]. */
function blur3x3(src: Uint8Array, s: number): Float32Array {
  const h = new Float32Array(src.length);
  const out = new Float32Array(src.length);
  const at = (v: number) => Math.min(s - 1, Math.max(0, v));
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s; x++)
      for (let c = 0; c < 3; c++)
        h[(y * s + x) * 3 + c] = (src[(y * s + at(x - 1)) * 3 + c] + 2 * src[(y * s + x) * 3 + c] + src[(y * s + at(x + 1)) * 3 + c]) / 4;
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s; x++)
      for (let c = 0; c < 3; c++)
        out[(y * s + x) * 3 + c] = (h[(at(y - 1) * s + x) * 3 + c] + 2 * h[(y * s + x) * 3 + c] + h[(at(y + 1) * s + x) * 3 + c]) / 4;
  return out;
}

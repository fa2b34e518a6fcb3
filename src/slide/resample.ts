// Resampling of RGB rasters ([h, w, 3] bytes): integer box downsampling and resampling of an
// arbitrary (fractional) source rectangle to a square tile, by area averaging when shrinking and
// bilinear interpolation when enlarging.

/** Box-averages RGB [h, w, 3] by an integer factor; edge blocks average what they hold. */
export function downsampleBox(rgb: Uint8Array, w: number, h: number, f: number): { width: number; height: number; data: Uint8Array } {
  if (f === 1) return { width: w, height: h, data: rgb };
  const ow = Math.ceil(w / f), oh = Math.ceil(h / f);
  const acc = new Uint32Array(ow * 3);
  const out = new Uint8Array(ow * oh * 3);
  for (let oy = 0; oy < oh; oy++) {
    acc.fill(0);
    const y1 = Math.min(h, (oy + 1) * f);
    for (let y = oy * f; y < y1; y++) {
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 3, o = Math.floor(x / f) * 3;
        acc[o] += rgb[i]; acc[o + 1] += rgb[i + 1]; acc[o + 2] += rgb[i + 2];
      }
    }
    for (let ox = 0; ox < ow; ox++) {
      const n = (Math.min(w, (ox + 1) * f) - ox * f) * (y1 - oy * f);
      for (let c = 0; c < 3; c++) out[(oy * ow + ox) * 3 + c] = Math.round(acc[ox * 3 + c] / n);
    }
  }
  return { width: ow, height: oh, data: out };
}

/**
 * Resamples the rectangle (sx, sy, sw, sh) of RGB `src` [srcH, srcW, 3] (fractional source pixel
 * coordinates, pixel i covering [i, i+1)) to RGB [size, size, 3].
 */
export function resampleRect(src: Uint8Array, srcW: number, srcH: number, sx: number, sy: number, sw: number, sh: number, size: number): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  const scaleX = sw / size, scaleY = sh / size;
  const clampX = (v: number) => Math.min(srcW - 1, Math.max(0, v));
  const clampY = (v: number) => Math.min(srcH - 1, Math.max(0, v));
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      const o = (oy * size + ox) * 3;
      if (scaleX > 1 || scaleY > 1) {
        // Area average over source pixels whose centres fall in the output pixel's footprint.
        const x0 = sx + ox * scaleX, x1 = x0 + scaleX, y0 = sy + oy * scaleY, y1 = y0 + scaleY;
        let ia = Math.ceil(x0 - 0.5), ib = Math.ceil(x1 - 0.5), ja = Math.ceil(y0 - 0.5), jb = Math.ceil(y1 - 0.5);
        if (ib <= ia) ib = ia + 1;
        if (jb <= ja) jb = ja + 1;
        let r = 0, g = 0, b = 0, n = 0;
        for (let j = ja; j < jb; j++) {
          const row = clampY(j) * srcW;
          for (let i = ia; i < ib; i++) {
            const s = (row + clampX(i)) * 3;
            r += src[s]; g += src[s + 1]; b += src[s + 2]; n++;
          }
        }
        out[o] = Math.round(r / n); out[o + 1] = Math.round(g / n); out[o + 2] = Math.round(b / n);
      } else {
        const fx = sx + (ox + 0.5) * scaleX - 0.5, fy = sy + (oy + 0.5) * scaleY - 0.5;
        const x0 = Math.floor(fx), y0 = Math.floor(fy), ax = fx - x0, ay = fy - y0;
        const p00 = (clampY(y0) * srcW + clampX(x0)) * 3, p10 = (clampY(y0) * srcW + clampX(x0 + 1)) * 3;
        const p01 = (clampY(y0 + 1) * srcW + clampX(x0)) * 3, p11 = (clampY(y0 + 1) * srcW + clampX(x0 + 1)) * 3;
        for (let c = 0; c < 3; c++) {
          const top = src[p00 + c] * (1 - ax) + src[p10 + c] * ax;
          const bottom = src[p01 + c] * (1 - ax) + src[p11 + c] * ax;
          out[o + c] = Math.round(top * (1 - ay) + bottom * ay);
        }
      }
    }
  }
  return out;
}

// JPEG 2000 tiles for test fixtures, encoded with the same OpenJPEG wasm build the reader uses.
// Its encoder always applies the multiple-component transform (MCT) to 3 components, so:
//  - RGB (Aperio 33005): RGB in, MCT 1 in the codestream; lossless (5/3 wavelet + RCT) by default.
//  - YCbCr without MCT (Aperio 33003): the reversible colour transform (RCT) is exact and
//    invertible, so the encoder is fed RCT⁻¹(Y, Cb, Cr) — its forward RCT then stores exactly
//    Y, Cb, Cr — and the COD marker's MCT byte is cleared, so decoders return the components
//    as stored. Where RCT⁻¹ leaves 0..255 the input is clamped; `stored` says what is in the file.
import { loadOpenJpeg, type OpenJpegModule } from '../decode-j2k.ts';

export interface J2kEncodeOptions {
  /** Lossy (9/7 wavelet) at this compression ratio; lossless when absent. */
  ratio?: number;
}

function encode(codec: OpenJpegModule, samples: Uint8Array, w: number, h: number, o: J2kEncodeOptions): Uint8Array {
  const enc = new codec.J2KEncoder();
  try {
    enc.getDecodedBuffer({ width: w, height: h, bitsPerSample: 8, componentCount: 3, isSigned: false, isUsingColorTransform: true }).set(samples);
    if (o.ratio) {
      enc.setQuality(false, 1);
      enc.setCompressionRatio(0, o.ratio);
    }
    enc.encode();
    return enc.getEncodedBuffer().slice();
  } finally {
    enc.delete();
  }
}

/** JPEG 2000 codestream of RGB [h, w, 3] with MCT (what Aperio writes as compression 33005). */
export async function encodeJ2kRgb(rgb: Uint8Array, w: number, h: number, o: J2kEncodeOptions = {}): Promise<Uint8Array> {
  return encode(await loadOpenJpeg(), rgb, w, h, o);
}

/** Byte offset of the COD marker's MCT field in a codestream's main header. */
function mctOffset(cs: Uint8Array): number {
  for (let i = 2; i + 4 <= cs.length;) {
    const marker = cs[i + 1];
    if (cs[i] !== 0xff || marker === 0x90) break;
    if (marker === 0x52) return i + 8;
    i += 2 + ((cs[i + 2] << 8) | cs[i + 3]);
  }
  throw new Error('no COD marker in the main header');
}

/**
 * Lossless JPEG 2000 codestream whose three components are the given YCbCr [h, w, 3], with no
 * MCT (Aperio 33003). Returns the codestream and the YCbCr actually stored (equal to the input
 * except where the input could not be represented).
 */
export async function encodeJ2kYcbcrNoMct(ycc: Uint8Array, w: number, h: number): Promise<{ codestream: Uint8Array; stored: Uint8Array }> {
  const n = w * h;
  const input = new Uint8Array(n * 3);
  const stored = new Uint8Array(n * 3);
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
  for (let i = 0; i < n * 3; i += 3) {
    // Stored components after the DC level shift: y = Y-128, u = Cb-128 (=b-g), v = Cr-128 (=r-g).
    const y = ycc[i] - 128, u = ycc[i + 1] - 128, v = ycc[i + 2] - 128;
    const g = y - ((u + v) >> 2);
    const R = clamp(v + g + 128), G = clamp(g + 128), B = clamp(u + g + 128);
    input[i] = R; input[i + 1] = G; input[i + 2] = B;
    const r0 = R - 128, g0 = G - 128, b0 = B - 128; // the encoder's forward RCT of what it got
    stored[i] = clamp(((r0 + 2 * g0 + b0) >> 2) + 128); // decoders clamp to the 8-bit range
    stored[i + 1] = clamp(b0 - g0 + 128);
    stored[i + 2] = clamp(r0 - g0 + 128);
  }
  const codestream = encode(await loadOpenJpeg(), input, w, h, {});
  const at = mctOffset(codestream);
  if (codestream[at] !== 1) throw new Error(`expected the encoder to use the MCT, COD says ${codestream[at]}`);
  codestream[at] = 0;
  return { codestream, stored };
}

/** JFIF (full-range BT.601) RGB -> YCbCr, [n, 3] each. */
export function rgbToYcbcr(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length);
  const c = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i], g = rgb[i + 1], b = rgb[i + 2];
    out[i] = c(0.299 * r + 0.587 * g + 0.114 * b);
    out[i + 1] = c(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
    out[i + 2] = c(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
  }
  return out;
}

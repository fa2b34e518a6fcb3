/// <reference path="./openjpeg.d.ts" />
// JPEG 2000 tiles (Aperio compression 33003 and 33005, libvips / Bio-Formats 33004) through
// OpenJPEG compiled to WebAssembly (@cornerstonejs/codec-openjpeg). The codec (about 370 kB of
// wasm) is imported on the first JPEG 2000 tile only; in a Vite build its .wasm is an asset (the
// `?url` import below), in Node the Emscripten glue reads it from node_modules.
//
// Colour follows the reference readers, decided by the compression code, never by the TIFF
// PhotometricInterpretation (Aperio writes it inconsistently):
//  - 33005 is RGB: the components as decoded (the codec inverts the codestream's MCT, if any).
//  - 33003 is YCbCr, as OpenSlide reads it: whatever the codec returns (after inverting the
//    codestream's MCT, which Aperio files may or may not use) is JFIF YCbCr and is converted with
//    OpenSlide's rounded tables (ycbcrToRgbOpenSlide). Subsampled chroma (4:2:0, and 4:2:2:
//    Cb and Cr at 2x1, as the codestream's SIZ says per component) is upsampled by repetition and
//    converted inside the codec (its sYCC path, truncating: within one level of OpenSlide's
//    rounding; fixtures/slides has both).
//  - 33004 is what libvips writes (RGB converted to YCbCr by libvips, then coded with MCT) and
//    reads back: converted with libvips's truncating matrix (ycbcrToRgbVips) for 3 components.
import type { OpenJpegModule, OpenJpegModuleOptions } from '@cornerstonejs/codec-openjpeg/wasmjs';
import { whiteTile, type RawTile } from './raw-tile.ts';
import { SlideError } from './errors.ts';
import { checkTileMemory } from './limits.ts';
import { isNode, loadOnce } from './lazy-codec.ts';

export type { OpenJpegModule } from '@cornerstonejs/codec-openjpeg/wasmjs';

/** What the main header of a codestream says about colour. */
export interface J2kHeader {
  /** Image size from SIZ (Xsiz - XOsiz, Ysiz - YOsiz). */
  width: number;
  height: number;
  /** Subsampling (XRsiz, YRsiz) of each component. */
  components: { dx: number; dy: number; bits: number; signed: boolean }[];
  /** The COD marker's multiple-component transform flag (0 or 1), or null when absent. */
  mct: number | null;
}

/** Parses SIZ and COD of a JPEG 2000 codestream (a bare one, or the first inside a JP2 file). */
export function parseJ2kHeader(bytes: Uint8Array): J2kHeader | null {
  let i = 0;
  if (!(bytes[0] === 0xff && bytes[1] === 0x4f)) {
    // JP2 wrapper: find SOC followed by SIZ.
    i = -1;
    for (let k = 0; k + 3 < bytes.length; k++) {
      if (bytes[k] === 0xff && bytes[k + 1] === 0x4f && bytes[k + 2] === 0xff && bytes[k + 3] === 0x51) { i = k; break; }
    }
    if (i < 0) return null;
  }
  const u16 = (p: number) => (bytes[p] << 8) | bytes[p + 1];
  let components: J2kHeader['components'] | null = null;
  let width = 0, height = 0;
  const u32 = (p: number) => ((bytes[p] << 24) >>> 0) + ((bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]);
  let mct: number | null = null;
  i += 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1];
    if (marker === 0x90 || marker === 0x93 || marker === 0xd9) break; // SOT, SOD, EOC: end of the main header
    const len = u16(i + 2);
    if (len < 2 || i + 2 + len > bytes.length) return null;
    if (marker === 0x51 && len >= 38) {
      const n = u16(i + 38);
      if (len < 38 + 3 * n) return null;
      width = u32(i + 6) - u32(i + 14);
      height = u32(i + 10) - u32(i + 18);
      components = [];
      for (let c = 0; c < n; c++) {
        const p = i + 40 + 3 * c;
        components.push({ bits: (bytes[p] & 0x7f) + 1, signed: (bytes[p] & 0x80) !== 0, dx: bytes[p + 1], dy: bytes[p + 2] });
      }
    } else if (marker === 0x52 && len >= 12) {
      mct = bytes[i + 8];
    }
    i += 2 + len;
  }
  return components ? { width, height, components, mct } : null;
}

/** Messages the codec printed during the current call (it reports failures only by printing). */
let codecLog: string[] = [];
const sink = (text: string) => {
  if (codecLog.length < 32) codecLog.push(text.trim());
};

/** Loads the OpenJPEG wasm module once (per realm). Rejects when it cannot be loaded. */
export const loadOpenJpeg = loadOnce(async (): Promise<OpenJpegModule> => {
  const mod = (await import('@cornerstonejs/codec-openjpeg/wasmjs')) as unknown as { default: unknown };
  // CommonJS glue: Node gives module.exports as `default`, bundlers may wrap it once more.
  const d = mod.default as { default?: unknown } | ((o?: OpenJpegModuleOptions) => Promise<OpenJpegModule>);
  const factory = (typeof d === 'function' ? d : d?.default) as ((o?: OpenJpegModuleOptions) => Promise<OpenJpegModule>) | undefined;
  if (typeof factory !== 'function') throw new Error('the codec module has no factory export');
  const options: OpenJpegModuleOptions = { print: sink, printErr: sink };
  if (!isNode()) {
    const { default: url } = await import('@cornerstonejs/codec-openjpeg/wasm?url');
    // Absolute, so that a worker started from a blob: URL finds it too.
    const wasmUrl = new URL(url, import.meta.url).href;
    options.locateFile = (path, prefix) => (path.endsWith('.wasm') ? wasmUrl : prefix + path);
  }
  return factory(options);
});

const chromaOk = (c: { dx: number; dy: number }) => (c.dx === 1 && c.dy === 1) || (c.dx === 2 && (c.dy === 1 || c.dy === 2));

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

// OpenSlide's YCbCr tables (make-tables.c): R = Y + round(1.402 (Cr-128)), B = Y + round(1.772 (Cb-128)),
// G = Y + ((round(2^16 (0.5 - 0.34414 (Cb-128))) + round(-2^16 0.71414 (Cr-128))) >> 16); C's round is half away from zero.
const cround = (v: number) => Math.sign(v) * Math.round(Math.abs(v));
const OS_R_CR = Int16Array.from({ length: 256 }, (_, i) => cround(1.402 * (i - 128)));
const OS_B_CB = Int16Array.from({ length: 256 }, (_, i) => cround(1.772 * (i - 128)));
const OS_G_CB = Int32Array.from({ length: 256 }, (_, i) => cround(65536 * (0.5 - 0.34414 * (i - 128))));
const OS_G_CR = Int32Array.from({ length: 256 }, (_, i) => cround(65536 * -0.71414 * (i - 128)));

/** YCbCr -> RGB in place as OpenSlide converts Aperio 33003 tiles. `px` is [n, 3]. */
export function ycbcrToRgbOpenSlide(px: Uint8Array, n: number): void {
  for (let i = 0; i < n * 3; i += 3) {
    const y = px[i], cb = px[i + 1], cr = px[i + 2];
    px[i] = clamp8(y + OS_R_CR[cr]);
    px[i + 1] = clamp8(y + ((OS_G_CB[cb] + OS_G_CR[cr]) >> 16));
    px[i + 2] = clamp8(y + OS_B_CB[cb]);
  }
}

/** YCbCr -> RGB in place as libvips (and OpenJPEG's sYCC path) converts: truncating. `px` is [n, 3]. */
export function ycbcrToRgbVips(px: Uint8Array, n: number): void {
  for (let i = 0; i < n * 3; i += 3) {
    const y = px[i], cb = px[i + 1] - 128, cr = px[i + 2] - 128;
    px[i] = clamp8(y + Math.trunc(1.402 * cr));
    px[i + 1] = clamp8(y - Math.trunc(0.344 * cb + 0.714 * cr));
    px[i + 2] = clamp8(y + Math.trunc(1.772 * cb));
  }
}

/** Decodes one JPEG 2000 tile to RGB [tile.height, tile.width, 3] with a loaded codec. */
export function decodeJ2kTile(codec: OpenJpegModule, tile: RawTile): Uint8Array {
  const { file, width, height, compression } = tile;
  const header = parseJ2kHeader(tile.bytes);
  if (!header) throw new SlideError(file, 'corrupt tile data (no JPEG 2000 codestream header)');
  const comps = header.components;
  if (comps.length !== 1 && comps.length !== 3) {
    throw new SlideError(file, `unsupported JPEG 2000 tile with ${comps.length} components`, 'unsupported');
  }
  if (comps.some((c) => c.bits !== 8 || c.signed)) {
    throw new SlideError(file, `unsupported JPEG 2000 sample precision ${comps.map((c) => `${c.signed ? 's' : 'u'}${c.bits}`).join('/')} (unsigned 8 bits only)`, 'unsupported');
  }
  const subsampled = comps.length === 3 && (comps[1].dx !== 1 || comps[1].dy !== 1 || comps[2].dx !== 1 || comps[2].dy !== 1);
  if (comps[0].dx !== 1 || comps[0].dy !== 1 || (comps.length === 3 && (!chromaOk(comps[1]) || comps[1].dx !== comps[2].dx || comps[1].dy !== comps[2].dy))) {
    throw new SlideError(file, `unsupported JPEG 2000 component subsampling ${comps.map((c) => `${c.dx}x${c.dy}`).join(', ')}`, 'unsupported');
  }
  // The codestream's own size decides what the codec allocates: never more than the tile.
  if (!(header.width > 0 && header.height > 0 && header.width <= width && header.height <= height)) {
    checkTileMemory(file, 'JPEG 2000 codestream', header.width, header.height, 16);
    throw new SlideError(file, `corrupt tile data (JPEG 2000 codestream is ${header.width}x${header.height}, the tile ${width}x${height})`);
  }
  codecLog = [];
  let decoded: Uint8ClampedArray;
  let w: number, h: number, n: number;
  const decoder = new codec.J2KDecoder();
  try {
    decoder.getEncodedBuffer(tile.bytes.length).set(tile.bytes);
    decoder.decode();
    const info = decoder.getFrameInfo();
    decoded = decoder.getDecodedBuffer();
    ({ width: w, height: h, componentCount: n } = info);
    if (info.bitsPerSample !== 8 || n !== comps.length || !(w > 0 && h > 0) || w > width || h > height || decoded.length !== w * h * n) {
      const why = codecLog.find((m) => m.startsWith('[ERROR]'))?.replace(/^\[ERROR\]\s*/, '') ?? `decoded ${decoded.length} bytes for ${w}x${h}x${n}`;
      throw new SlideError(file, `corrupt tile data (JPEG 2000: ${why})`);
    }
  } catch (e) {
    if (e instanceof SlideError) throw e;
    if (e instanceof WebAssembly.RuntimeError) loadOpenJpeg.forget(); // a trapped module is unusable: load afresh next time
    throw new SlideError(file, `corrupt tile data (JPEG 2000: ${(e as Error).message ?? String(e)})`);
  } finally {
    decoder.delete();
  }
  const px = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.length); // [h, w, n]
  // Subsampled chroma was converted by the codec (sYCC); full-resolution YCbCr is converted here.
  if (n === 3 && !subsampled && compression === 33003) ycbcrToRgbOpenSlide(px, w * h);
  if (n === 3 && !subsampled && compression === 33004) ycbcrToRgbVips(px, w * h);
  if (w === width && h === height && n === 3) return px;
  // Grey, or a codestream smaller than the tile (an edge tile): copy the overlap; the rest stays white.
  const rgb = whiteTile(width, height);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * n, d = (y * width + x) * 3;
      rgb[d] = px[s];
      rgb[d + 1] = px[s + (n === 3 ? 1 : 0)];
      rgb[d + 2] = px[s + (n === 3 ? 2 : 0)];
    }
  }
  return rgb;
}

/// <reference path="./openjpeg.d.ts" />
// JPEG 2000 tiles (Aperio compression 33003 and 33005) through OpenJPEG compiled to WebAssembly
// (@cornerstonejs/codec-openjpeg). The codec (about 370 kB of wasm) is imported on the first
// JPEG 2000 tile only; in a Vite build its .wasm is an asset (the `?url` import below), in Node
// the Emscripten glue reads it from node_modules.
//
// Colour: 33005 tiles are RGB, usually coded with the JPEG 2000 multiple-component transform
// (MCT), which the codec inverts. 33003 tiles hold JFIF (full-range BT.601) YCbCr in the three
// components with no MCT, chroma possibly subsampled: when the codestream's COD marker says
// MCT 0 the components are converted here; subsampled chroma is converted by the codec itself
// (its sYCC path, the same matrix). A 33003 codestream that does use the MCT already decodes to
// RGB and is taken as is. The TIFF PhotometricInterpretation of these files is not trusted
// (Aperio writes it inconsistently); the compression code and the codestream decide.
import type { OpenJpegModule, OpenJpegModuleOptions } from '@cornerstonejs/codec-openjpeg/wasmjs';
import { whiteTile, ycbcrToRgb, type RawTile } from './raw-tile.ts';
import { SlideError } from './errors.ts';

export type { OpenJpegModule } from '@cornerstonejs/codec-openjpeg/wasmjs';

/** What the main header of a codestream says about colour. */
export interface J2kHeader {
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
  return components ? { components, mct } : null;
}

/** Messages the codec printed during the current call (it reports failures only by printing). */
let codecLog: string[] = [];
const sink = (text: string) => {
  if (codecLog.length < 32) codecLog.push(text.trim());
};

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return typeof p?.versions?.node === 'string';
}

let shared: Promise<OpenJpegModule> | null = null;

/** Loads the OpenJPEG wasm module once (per realm). Rejects when it cannot be loaded. */
export function loadOpenJpeg(): Promise<OpenJpegModule> {
  if (!shared) {
    shared = (async () => {
      const mod = (await import('@cornerstonejs/codec-openjpeg/wasmjs')) as unknown as { default: unknown };
      // CommonJS glue: Node gives module.exports as `default`, bundlers may wrap it once more.
      const d = mod.default as { default?: unknown } | ((o?: OpenJpegModuleOptions) => Promise<OpenJpegModule>);
      const factory = (typeof d === 'function' ? d : d?.default) as ((o?: OpenJpegModuleOptions) => Promise<OpenJpegModule>) | undefined;
      if (typeof factory !== 'function') throw new Error('the codec module has no factory export');
      const options: OpenJpegModuleOptions = { print: sink, printErr: sink };
      if (!isNode()) {
        const { default: url } = await import('@cornerstonejs/codec-openjpeg/wasm?url');
        options.locateFile = (path, prefix) => (path.endsWith('.wasm') ? url : prefix + path);
      }
      return factory(options);
    })();
    shared.catch(() => (shared = null)); // let a later tile try again
  }
  return shared;
}

const chromaOk = (c: { dx: number; dy: number }) => (c.dx === 1 && c.dy === 1) || (c.dx === 2 && (c.dy === 1 || c.dy === 2));

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
    if (info.bitsPerSample !== 8 || n !== comps.length || !(w > 0 && h > 0) || decoded.length !== w * h * n) {
      const why = codecLog.find((m) => m.startsWith('[ERROR]'))?.replace(/^\[ERROR\]\s*/, '') ?? `decoded ${decoded.length} bytes for ${w}x${h}x${n}`;
      throw new SlideError(file, `corrupt tile data (JPEG 2000: ${why})`);
    }
  } catch (e) {
    if (e instanceof SlideError) throw e;
    if (e instanceof WebAssembly.RuntimeError) shared = null; // a trapped module is unusable: load afresh next time
    throw new SlideError(file, `corrupt tile data (JPEG 2000: ${(e as Error).message ?? String(e)})`);
  } finally {
    decoder.delete();
  }
  const px = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.length); // [h, w, n]
  if (n === 3 && compression === 33003 && !subsampled && header.mct !== 1) ycbcrToRgb(px, px, w * h);
  if (w === width && h === height && n === 3) return px;
  // Grey, or a codestream of another size than the tile: copy the overlap; the rest stays white.
  const rgb = whiteTile(width, height);
  for (let y = 0; y < Math.min(h, height); y++) {
    for (let x = 0; x < Math.min(w, width); x++) {
      const s = (y * w + x) * n, d = (y * width + x) * 3;
      rgb[d] = px[s];
      rgb[d + 1] = px[s + (n === 3 ? 1 : 0)];
      rgb[d + 2] = px[s + (n === 3 ? 2 : 0)];
    }
  }
  return rgb;
}

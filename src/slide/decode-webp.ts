// WebP tiles (TIFF compression 50001, what libtiff and libvips write) in Node and workers without a
// native decoder: libwebp compiled to WebAssembly (@jsquash/webp, from the Squoosh app), imported
// on the first WebP tile. Browsers decode WebP natively (decode-native.ts) and fall back to this.
// The header's size is checked against the tile before the codec allocates anything.
import { SlideError } from './errors.ts';
import { checkTileMemory } from './limits.ts';
import { isNode, loadOnce } from './lazy-codec.ts';
import { whiteTile, type RawTile } from './raw-tile.ts';

/** Canvas size from a WebP file's header (VP8, VP8L or VP8X), or null when it is not WebP. */
export function webpSize(b: Uint8Array): { width: number; height: number } | null {
  const tag = (p: number) => String.fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3]);
  if (b.length < 30 || tag(0) !== 'RIFF' || tag(8) !== 'WEBP') return null;
  const chunk = tag(12);
  if (chunk === 'VP8 ') {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
    return { width: (b[26] | (b[27] << 8)) & 0x3fff, height: (b[28] | (b[29] << 8)) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return null;
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') {
    return { width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
  }
  return null;
}

/** Checks a WebP tile's header against its TIFF tile; returns the canvas size. */
export function checkWebpTile(tile: RawTile): { width: number; height: number } {
  const size = webpSize(tile.bytes);
  if (!size) throw new SlideError(tile.file, 'corrupt tile data (no WebP header)');
  if (!(size.width <= tile.width && size.height <= tile.height)) {
    checkTileMemory(tile.file, 'WebP tile', size.width, size.height);
    throw new SlideError(tile.file, `corrupt tile data (WebP image is ${size.width}x${size.height}, the tile ${tile.width}x${tile.height})`);
  }
  return size;
}

type WebpDecode = (buffer: ArrayBuffer) => Promise<{ data: Uint8ClampedArray; width: number; height: number }>;

/** Loads the wasm WebP decoder once per realm. */
export const loadWebp = loadOnce(async (): Promise<WebpDecode> => {
  const mod = await import('@jsquash/webp/decode.js');
  let wasm: WebAssembly.Module;
  if (isNode()) {
    const [{ readFile }, { createRequire }] = await Promise.all([import('node:fs/promises'), import('node:module')]);
    const path = createRequire(import.meta.url).resolve('@jsquash/webp/codec/dec/webp_dec.wasm');
    wasm = await WebAssembly.compile(await readFile(path));
  } else {
    const { default: url } = await import('@jsquash/webp/codec/dec/webp_dec.wasm?url');
    wasm = await WebAssembly.compile(await (await fetch(new URL(url, import.meta.url))).arrayBuffer());
  }
  await (mod.init as (m: WebAssembly.Module) => Promise<void>)(wasm);
  return mod.default as unknown as WebpDecode;
});

/** RGB [tile.height, tile.width, 3] of RGBA [h, w, 4] pixels (an image smaller than the tile is padded white). */
export function rgbaToTileRgb(rgba: Uint8Array | Uint8ClampedArray, w: number, h: number, tile: { width: number; height: number }): Uint8Array {
  const out = w === tile.width && h === tile.height ? new Uint8Array(w * h * 3) : whiteTile(tile.width, tile.height);
  for (let y = 0; y < Math.min(h, tile.height); y++) {
    for (let x = 0; x < Math.min(w, tile.width); x++) {
      const s = (y * w + x) * 4, d = (y * tile.width + x) * 3;
      out[d] = rgba[s];
      out[d + 1] = rgba[s + 1];
      out[d + 2] = rgba[s + 2];
    }
  }
  return out;
}

/** Decodes one WebP tile to RGB [tile.height, tile.width, 3] with the wasm decoder. */
export async function decodeWebpTile(tile: RawTile): Promise<Uint8Array> {
  checkWebpTile(tile);
  let decode: WebpDecode;
  try {
    decode = await loadWebp();
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new SlideError(tile.file, `unsupported compression WebP (50001): the WebP decoder could not be loaded (${why})`, 'unsupported');
  }
  let image: { data: Uint8ClampedArray; width: number; height: number };
  try {
    image = await decode(tile.bytes.slice().buffer as ArrayBuffer);
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) loadWebp.forget();
    throw new SlideError(tile.file, `corrupt tile data (WebP: ${(e as Error).message ?? String(e)})`);
  }
  if (!(image.width <= tile.width && image.height <= tile.height) || image.data.length !== image.width * image.height * 4) {
    throw new SlideError(tile.file, `corrupt tile data (WebP decoded ${image.width}x${image.height}, the tile is ${tile.width}x${tile.height})`);
  }
  return rgbaToTileRgb(image.data, image.width, image.height, tile);
}

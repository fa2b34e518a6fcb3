// Native JPEG decoding for workers and pages: a TIFF JPEG tile is rebuilt as a complete JPEG
// (SOI, the shared JPEGTables, the tile's own segments and scan) and decoded by the browser
// (createImageBitmap, read back through OffscreenCanvas). Aperio and libvips RGB-JPEG tiles carry
// no colour-transform marker and component ids 0,1,2 or 1,2,3, so a native decoder would treat
// them as YCbCr: an Adobe APP14 marker with transform 0 is injected for RGB tiles (and a JFIF
// APP0, which would override it, removed); YCbCr tiles are left alone. WebP tiles (50001) are
// decoded natively as they are (after their header is checked against the tile). Anything else
// (separate planes included), and any native failure, falls back to the JS decoder.
import { createJsDecoder, type RawTile, type TileDecoder } from './decode-js.ts';
import { checkWebpTile, rgbaToTileRgb } from './decode-webp.ts';

const SOI = 0xd8, EOI = 0xd9, SOS = 0xda, APP0 = 0xe0, APP14 = 0xee;

/** Adobe APP14, version 100, no flags, transform 0 (components are stored as is: RGB). */
export const ADOBE_RGB = Uint8Array.from([0xff, APP14, 0, 14, 0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, 0]);

interface Segment { marker: number; start: number; end: number }

/** Marker segments of a JPEG stream up to (not including) SOS; `rest` is where SOS starts. */
function segments(jpeg: Uint8Array): { segs: Segment[]; rest: number } {
  if (jpeg[0] !== 0xff || jpeg[1] !== SOI) throw new Error('JPEG data does not start with SOI');
  const segs: Segment[] = [];
  let i = 2;
  while (i + 3 < jpeg.length) {
    if (jpeg[i] !== 0xff) throw new Error(`bad JPEG marker at byte ${i}`);
    const marker = jpeg[i + 1];
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === SOS || marker === EOI) return { segs, rest: i };
    const end = i + 2 + ((jpeg[i + 2] << 8) | jpeg[i + 3]);
    segs.push({ marker, start: i, end });
    i = end;
  }
  return { segs, rest: i };
}

const isJfif = (b: Uint8Array, s: Segment) => s.marker === APP0 && b[s.start + 4] === 0x4a && b[s.start + 5] === 0x46 && b[s.start + 6] === 0x49 && b[s.start + 7] === 0x46;
const isAdobe = (b: Uint8Array, s: Segment) => s.marker === APP14 && b[s.start + 4] === 0x41 && b[s.start + 5] === 0x64 && b[s.start + 6] === 0x6f && b[s.start + 7] === 0x62 && b[s.start + 8] === 0x65;

/**
 * A complete JPEG from TIFF JPEGTables and one tile: SOI, [APP14 transform 0 for RGB],
 * table segments, the tile's segments, then its scan to EOI.
 */
export function rebuildJpeg(tables: Uint8Array | null, tile: Uint8Array, photometric: number, options: { adobe?: boolean } = {}): Uint8Array {
  const rgb = photometric === 2 && (options.adobe ?? true);
  const parts: Uint8Array[] = [tile.subarray(0, 2)];
  const t = segments(tile);
  const tableSegs = tables && tables.length > 4 ? segments(tables).segs : [];
  const keep = (b: Uint8Array, s: Segment) => !(rgb && isJfif(b, s));
  if (rgb && !t.segs.some((s) => isAdobe(tile, s)) && !tableSegs.some((s) => isAdobe(tables!, s))) parts.push(ADOBE_RGB);
  for (const s of tableSegs) if (keep(tables!, s)) parts.push(tables!.subarray(s.start, s.end));
  for (const s of t.segs) if (keep(tile, s)) parts.push(tile.subarray(s.start, s.end));
  parts.push(tile.subarray(t.rest));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Whether this context can decode natively (browser window or worker). */
export function nativeDecodeAvailable(): boolean {
  return typeof createImageBitmap === 'function' && typeof OffscreenCanvas === 'function';
}

export interface NativeDecoderStats {
  native: number;
  fallback: number;
  /** The last native failure, if any (the tile then went to the JS decoder). */
  lastError: string | null;
}

/** A TileDecoder that decodes JPEG tiles natively; `stats` counts which path each tile took. */
export function createNativeDecoder(options: { fallback?: TileDecoder } = {}): TileDecoder & { stats: NativeDecoderStats } {
  const fallback = options.fallback ?? createJsDecoder();
  const stats: NativeDecoderStats = { native: 0, fallback: 0, lastError: null };
  let canvas: OffscreenCanvas | null = null;
  let ctx: OffscreenCanvasRenderingContext2D | null = null;
  const decode = async (tile: RawTile, signal?: AbortSignal): Promise<Uint8Array> => {
    const webp = tile.compression === 50001;
    if (tile.bytes.length === 0 || tile.planes || (tile.compression !== 7 && !webp) || !nativeDecodeAvailable() || tile.bitsPerSample.some((b) => b !== 8)
      || (!webp && tile.photometric !== 2 && tile.photometric !== 6)) {
      stats.fallback++;
      return fallback(tile, signal);
    }
    let bitmap: ImageBitmap | null = null;
    try {
      let blob: Blob;
      if (webp) {
        checkWebpTile(tile);
        blob = new Blob([tile.bytes as BlobPart], { type: 'image/webp' });
      } else {
        blob = new Blob([rebuildJpeg(tile.jpegTables, tile.bytes, tile.photometric) as BlobPart], { type: 'image/jpeg' });
      }
      bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      if (webp ? bitmap.width > tile.width || bitmap.height > tile.height : bitmap.width < tile.width || bitmap.height < tile.height) {
        throw new Error(`decoded ${bitmap.width}x${bitmap.height}, expected ${tile.width}x${tile.height}`);
      }
      const w = Math.min(bitmap.width, tile.width), h = Math.min(bitmap.height, tile.height);
      if (!canvas || canvas.width !== w || canvas.height !== h) {
        canvas = new OffscreenCanvas(w, h);
        ctx = canvas.getContext('2d', { willReadFrequently: true });
      }
      if (!ctx) throw new Error('no 2d context on OffscreenCanvas');
      ctx.clearRect(0, 0, w, h);
      ctx.drawImage(bitmap, 0, 0);
      const rgba = ctx.getImageData(0, 0, w, h).data; // [h, w, 4]
      stats.native++;
      return rgbaToTileRgb(rgba, w, h, tile); // [tile.height, tile.width, 3]
    } catch (e) {
      stats.fallback++;
      stats.lastError = (e as Error).message;
      return fallback(tile, signal);
    } finally {
      bitmap?.close();
    }
  };
  return Object.assign(decode, { stats });
}

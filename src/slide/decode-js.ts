// The portable tile decoder: geotiff's pure-JS codecs (JPEG with shared tables, LZW, Deflate,
// PackBits, ZSTD, uncompressed), Aperio JPEG 2000 through OpenJPEG in WebAssembly (decode-j2k.ts,
// loaded on the first such tile), plus the conversion of the decoded samples to RGB. Runs in
// Node, in workers and on the main thread; decode-native.ts falls back to it.
import { getDecoder } from 'geotiff';
import type { OpenJpegModule } from './decode-j2k.ts';
import { SlideError } from './errors.ts';

/** One stored tile or strip, still compressed, with what a decoder needs to know about it. */
export interface RawTile {
  /** File the tile came from (for errors). */
  file: string;
  /** Identifies the level (its IFD offset): decoders cache per-level state under it. */
  levelKey: number;
  /** Compressed bytes; empty for a missing (zero-length) tile. */
  bytes: Uint8Array;
  compression: number;
  photometric: number;
  /** Decoded block size: tile size, or (image width, rows in this strip). */
  width: number;
  height: number;
  samplesPerPixel: number;
  bitsPerSample: number[];
  planarConfiguration: number;
  predictor: number;
  /** Shared JPEG quantisation and Huffman tables (TIFF tag 347), or null. */
  jpegTables: Uint8Array | null;
}

/** Decodes one tile to RGB. Returns [height, width, 3] bytes. */
export type TileDecoder = (tile: RawTile, signal?: AbortSignal) => Promise<Uint8Array>;

/** Aperio JPEG 2000: YCbCr (33003) and RGB (33005); see decode-j2k.ts. */
export const isJ2k = (compression: number): boolean => compression === 33003 || compression === 33005;

/** Compressions the JS decoder handles (WebP only where createImageBitmap exists). */
export function jsDecodable(compression: number): boolean {
  if (compression === 50001) return typeof createImageBitmap === 'function' && typeof OffscreenCanvas === 'function';
  return [1, 5, 7, 8, 32946, 32773, 50000].includes(compression) || isJ2k(compression);
}

/** White [height, width, 3]: what a missing tile shows (slide background). */
export function whiteTile(width: number, height: number): Uint8Array {
  return new Uint8Array(width * height * 3).fill(255);
}

/** In-place-safe YCbCr (JFIF, full range) to RGB. `src` [n, 3] YCbCr -> `dst` [n, 3] RGB. */
export function ycbcrToRgb(src: Uint8Array, dst: Uint8Array, n: number): void {
  for (let i = 0; i < n * 3; i += 3) {
    const y = src[i];
    const cb = src[i + 1] - 128;
    const cr = src[i + 2] - 128;
    const r = y + 1.402 * cr;
    const g = y - 0.344136 * cb - 0.714136 * cr;
    const b = y + 1.772 * cb;
    dst[i] = r < 0 ? 0 : r > 255 ? 255 : r + 0.5;
    dst[i + 1] = g < 0 ? 0 : g > 255 ? 255 : g + 0.5;
    dst[i + 2] = b < 0 ? 0 : b > 255 ? 255 : b + 0.5;
  }
}

/** Converts decoded samples [rows, width, spp] to RGB [height, width, 3]. */
export function samplesToRgb(samples: Uint8Array, tile: RawTile): Uint8Array {
  const { width, height, samplesPerPixel: spp, photometric } = tile;
  const n = width * height;
  if (samples.length < n * spp) {
    throw new SlideError(tile.file, `corrupt tile: decoded ${samples.length} bytes, expected ${n * spp}`);
  }
  const out = new Uint8Array(n * 3);
  if (photometric === 2 || photometric === 6) {
    if (spp < 3) throw new SlideError(tile.file, `corrupt file: photometric ${photometric} with ${spp} samples per pixel`);
    for (let i = 0, j = 0; i < n; i++, j += spp) {
      out[i * 3] = samples[j];
      out[i * 3 + 1] = samples[j + 1];
      out[i * 3 + 2] = samples[j + 2];
    }
    if (photometric === 6) ycbcrToRgb(out, out, n);
  } else if (photometric === 0 || photometric === 1) {
    for (let i = 0, j = 0; i < n; i++, j += spp) {
      const v = photometric === 0 ? 255 - samples[j] : samples[j];
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = v;
    }
  } else {
    throw new SlideError(tile.file, `unsupported photometric interpretation ${photometric}`, 'unsupported');
  }
  return out;
}

type GeotiffDecoder = { decode(buffer: ArrayBuffer): Promise<ArrayBuffer> };

export interface JsDecoderOptions {
  /** Loads the JPEG 2000 codec (default: decode-j2k.ts's loadOpenJpeg, once per realm). */
  loadJ2k?: () => Promise<OpenJpegModule>;
}

/** A JS decoder with its per-level geotiff codec cache. */
export function createJsDecoder(options: JsDecoderOptions = {}): TileDecoder {
  const codecs = new Map<string, Promise<GeotiffDecoder>>();
  return async (tile) => {
    if (tile.bytes.length === 0) return whiteTile(tile.width, tile.height);
    if (isJ2k(tile.compression)) return decodeJ2k(tile, options.loadJ2k);
    const key = `${tile.file}#${tile.levelKey}#${tile.width}x${tile.height}`;
    let codec = codecs.get(key);
    if (!codec) {
      codec = getDecoder(tile.compression, {
        tileWidth: tile.width,
        tileHeight: tile.height,
        planarConfiguration: tile.planarConfiguration,
        bitsPerSample: tile.bitsPerSample,
        predictor: tile.predictor,
        samplesPerPixel: tile.samplesPerPixel,
        JPEGTables: tile.jpegTables ?? undefined,
      } as never) as unknown as Promise<GeotiffDecoder>;
      codecs.set(key, codec);
      if (codecs.size > 64) codecs.delete(codecs.keys().next().value as string);
    }
    let decoded: ArrayBuffer;
    try {
      const input = tile.bytes.slice().buffer as ArrayBuffer; // codecs may keep or detach the buffer
      decoded = await (await codec).decode(input);
    } catch (e) {
      throw new SlideError(tile.file, `corrupt tile data (${(e as Error).message})`);
    }
    return samplesToRgb(new Uint8Array(decoded), tile);
  };
}

/** One JPEG 2000 tile: the codec glue and the codec are imported on the first one. */
async function decodeJ2k(tile: RawTile, load?: () => Promise<OpenJpegModule>): Promise<Uint8Array> {
  const j2k = await import('./decode-j2k.ts');
  let codec: OpenJpegModule;
  try {
    codec = await (load ?? j2k.loadOpenJpeg)();
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new SlideError(tile.file, `unsupported compression JPEG 2000 (${tile.compression}): the JPEG 2000 decoder could not be loaded (${why})`, 'unsupported');
  }
  return j2k.decodeJ2kTile(codec, tile);
}

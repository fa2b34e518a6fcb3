// The portable tile decoder: geotiff's pure-JS codecs (JPEG with shared tables, LZW, Deflate,
// PackBits, ZSTD, uncompressed), Aperio JPEG 2000 through OpenJPEG in WebAssembly (decode-j2k.ts,
// loaded on the first such tile), plus the conversion of the decoded samples to RGB. Runs in
// Node, in workers and on the main thread; decode-native.ts falls back to it.
import { getDecoder } from 'geotiff';
import type { OpenJpegModule } from './decode-j2k.ts';
import { isAbortError, SlideError, throwIfAborted } from './errors.ts';
import { samplesToRgb, whiteTile, type RawTile, type TileDecoder } from './raw-tile.ts';

/** Aperio JPEG 2000: YCbCr (33003) and RGB (33005); see decode-j2k.ts. */
export const isJ2k = (compression: number): boolean => compression === 33003 || compression === 33005;

/** Compressions the JS decoder handles (WebP only where createImageBitmap exists). */
export function jsDecodable(compression: number): boolean {
  if (compression === 50001) return typeof createImageBitmap === 'function' && typeof OffscreenCanvas === 'function';
  return [1, 5, 7, 8, 32946, 32773, 50000].includes(compression) || isJ2k(compression);
}

export type { RawTile, TileDecoder } from './raw-tile.ts';

type GeotiffDecoder = { decode(buffer: ArrayBuffer): Promise<ArrayBuffer> };

export interface JsDecoderOptions {
  /** Loads the JPEG 2000 codec (default: decode-j2k.ts's loadOpenJpeg, once per realm). */
  loadJ2k?: () => Promise<OpenJpegModule>;
}

/** A JS decoder with its per-level geotiff codec cache. */
export function createJsDecoder(options: JsDecoderOptions = {}): TileDecoder {
  const codecs = new Map<string, Promise<GeotiffDecoder>>();
  return async (tile, signal) => {
    if (tile.bytes.length === 0) return whiteTile(tile.width, tile.height);
    if (isJ2k(tile.compression)) return decodeJ2k(tile, options.loadJ2k);
    throwIfAborted(signal, tile.file); // a stopped run decodes no further tile
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
      throwIfAborted(signal, tile.file);
    } catch (e) {
      if (isAbortError(e)) throw e;
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

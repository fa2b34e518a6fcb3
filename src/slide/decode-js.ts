// The portable tile decoder: geotiff's pure-JS codecs (JPEG with shared tables, LZW, Deflate,
// PackBits, ZSTD, uncompressed), JPEG 2000 (Aperio 33003/33005, libvips 33004) through OpenJPEG in
// WebAssembly (decode-j2k.ts) and WebP through libwebp in WebAssembly (decode-webp.ts), each
// loaded on its first tile, plus the conversion of the decoded samples to RGB. Runs in Node, in
// workers and on the main thread; decode-native.ts falls back to it. A JPEG tile's frame header
// is checked against the tile before geotiff's decoder allocates its output; Deflate, LZW,
// PackBits and ZSTD are decompressed within the block's size (decompress.ts), and only the
// predictor is left to geotiff (its raw codec).
import { getDecoder } from 'geotiff';
import type { OpenJpegModule } from './decode-j2k.ts';
import { decompressBlock, isBoundedCompression } from './decompress.ts';
import { isAbortError, SlideError, throwIfAborted } from './errors.ts';
import { checkJpegFrame, samplesToRgb, whiteTile, type RawTile, type TileDecoder } from './raw-tile.ts';

/** JPEG 2000 in TIFF: Aperio YCbCr (33003) and RGB (33005), libvips / Bio-Formats (33004); see decode-j2k.ts. */
export const isJ2k = (compression: number): boolean => compression === 33003 || compression === 33004 || compression === 33005;

/** Compressions the JS decoder handles. */
export function jsDecodable(compression: number): boolean {
  return [1, 5, 7, 8, 32946, 32773, 50000, 50001].includes(compression) || isJ2k(compression);
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
  const decode: TileDecoder = async (tile, signal) => {
    if (tile.planes && tile.planes.length > 1) return decodePlanes(tile, decode, signal);
    if (tile.bytes.length === 0) return whiteTile(tile.width, tile.height);
    if (isJ2k(tile.compression)) return decodeJ2k(tile, options.loadJ2k);
    if (tile.compression === 50001) return (await import('./decode-webp.ts')).decodeWebpTile(tile);
    throwIfAborted(signal, tile.file); // a stopped run decodes no further tile
    if (tile.compression === 7) checkJpegFrame(tile);
    const bounded = isBoundedCompression(tile.compression); // decompressed here; geotiff's raw codec applies the predictor
    const compression = bounded ? 1 : tile.compression;
    const key = `${tile.file}#${tile.levelKey}#${compression}#${tile.width}x${tile.height}x${tile.samplesPerPixel}`;
    let codec = codecs.get(key);
    if (!codec) {
      codec = getDecoder(compression, {
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
      const input = (bounded ? await decompressBlock(tile) : tile.bytes.slice()).buffer as ArrayBuffer; // codecs may keep or detach the buffer
      decoded = await (await codec).decode(input);
      throwIfAborted(signal, tile.file);
    } catch (e) {
      if (isAbortError(e) || e instanceof SlideError) throw e; // SlideError: over the block's limit (decompress.ts)
      const why = e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e) ?? String(e); // pako throws bare strings
      throw new SlideError(tile.file, `corrupt tile data (${why.split('\n')[0] || 'decoder failed'})`);
    }
    return samplesToRgb(new Uint8Array(decoded), tile);
  };
  return decode;
}

/**
 * Separate planes: each plane decodes as a one-sample grey image [h, w] and lands in its channel of
 * RGB [h, w, 3] (grey images use plane 0 for all three; extra planes such as alpha are ignored).
 * A missing plane block reads white in its channel.
 */
export async function decodePlanes(tile: RawTile, decodeOne: TileDecoder, signal?: AbortSignal): Promise<Uint8Array> {
  const planes = tile.planes ?? [tile.bytes];
  const colour = tile.photometric === 2;
  if (!colour && tile.photometric !== 0 && tile.photometric !== 1) {
    throw new SlideError(tile.file, `unsupported separate colour planes with photometric interpretation ${tile.photometric}`, 'unsupported');
  }
  if (colour && planes.length < 3) throw new SlideError(tile.file, `corrupt file: RGB with ${planes.length} planes`);
  const n = tile.width * tile.height;
  const out = new Uint8Array(n * 3);
  for (let c = 0; c < (colour ? 3 : 1); c++) {
    const grey = await decodeOne({
      ...tile, bytes: planes[c], planes: undefined, samplesPerPixel: 1, bitsPerSample: [tile.bitsPerSample[c] ?? 8], block: `${tile.block ?? 'tile'} plane ${c}`,
      planarConfiguration: 1, photometric: colour ? 1 : tile.photometric,
    }, signal); // [h, w, 3], three equal channels
    for (let i = 0; i < n; i++) {
      if (colour) out[i * 3 + c] = grey[i * 3];
      else out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = grey[i * 3];
    }
  }
  return out;
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

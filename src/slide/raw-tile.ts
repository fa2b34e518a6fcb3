// A stored tile as the decoders see it, and the pixel helpers every decoder shares (samples to
// RGB, YCbCr to RGB, the white of a missing tile). Its own module so that the JS decoder and the
// JPEG 2000 glue (decode-j2k.ts, loaded lazily by the JS decoder) both import it without
// importing each other.
import { SlideError } from './errors.ts';
import { checkTileMemory } from './limits.ts';

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
  /** Rows of a full block (TileLength or RowsPerStrip; more than `height` for a short last strip, which a writer may pad to it). */
  storedHeight?: number;
  /** Which block this is, for errors ('tile 12', 'strip 3'). */
  block?: string;
  samplesPerPixel: number;
  bitsPerSample: number[];
  planarConfiguration: number;
  predictor: number;
  /** Shared JPEG quantisation and Huffman tables (TIFF tag 347), or null. */
  jpegTables: Uint8Array | null;
  /**
   * Separate colour planes (PlanarConfiguration 2): the compressed block of each sample, plane 0
   * first (`bytes` is plane 0); each decodes as a one-sample image of the tile's size.
   */
  planes?: Uint8Array[];
}

/** Decodes one tile to RGB. Returns [height, width, 3] bytes. */
export type TileDecoder = (tile: RawTile, signal?: AbortSignal) => Promise<Uint8Array>;

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

/** The frame size (SOF) of a JPEG stream, or null when there is none before the scan. */
export function jpegFrameSize(b: Uint8Array): { width: number; height: number } | null {
  if (b[0] !== 0xff || b[1] !== 0xd8) return null;
  for (let i = 2; i + 4 <= b.length;) {
    if (b[i] !== 0xff) return null;
    const m = b[i + 1];
    if (m === 0xff) { i++; continue; }
    if (m === 0xda || m === 0xd9) return null; // SOS or EOI before any SOF
    const len = (b[i + 2] << 8) | b[i + 3];
    const sof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (sof && i + 9 <= b.length) return { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };
    if (len < 2) return null;
    i += 2 + len;
  }
  return null;
}

/** Refuses a JPEG tile whose frame header claims more than the memory limit (before decoding). */
export function checkJpegFrame(tile: RawTile): void {
  const size = jpegFrameSize(tile.bytes);
  if (size) checkTileMemory(tile.file, 'JPEG frame', size.width, size.height);
}

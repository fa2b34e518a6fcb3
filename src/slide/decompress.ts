/// <reference path="./pako.d.ts" />
// Bounded decompression of the TIFF codecs whose output a hostile file could blow up: Deflate
// (8, 32946; a few KB of zeros inflate to gigabytes), LZW (5; up to ~2700x), PackBits (32773;
// up to 64x) and ZSTD (50000; a frame may claim any size, or none). A block never decodes to more
// than what it holds (blockBytes: width x rows x the bits of its samples) plus one row and 1 KiB
// of slack; past that the decoder stops and the tile is refused with a SlideError
// ('absurd-dimensions') naming the file, the tile and the limit, so memory stays at the block's
// own size whatever the compressed bytes say.
//  - Deflate streams through pako's Inflate in 64 KiB chunks (the same inflater geotiff's codec
//    used, so valid and tolerated-corrupt data decode exactly as before) and stops at the limit.
//  - LZW and PackBits are ports of geotiff's decoders (same bit reader, early change, the same
//    leniencies) writing into one buffer of the limit's size instead of a growing JS array.
//    Unlike geotiff's, the LZW dictionary holds all 4096 codes (geotiff's holds 4093: code 4094,
//    which refers to entry 4093, sends it into an endless loop that runs out of memory).
//  - ZSTD decodes with zstddec (geotiff's codec) into a buffer of the limit: zstd stops there
//    with an error, which zstddec cannot tell from corrupt data, so that tile is refused as
//    corrupt or over the limit ('corrupt', the limit stated).
// The predictor is applied afterwards by geotiff's raw codec (decode-js.ts).
import { Inflate } from 'pako';
import { SlideError } from './errors.ts';
import type { RawTile } from './raw-tile.ts';

const CODECS: Record<number, string> = { 5: 'LZW', 8: 'Deflate', 32946: 'Deflate', 32773: 'PackBits', 50000: 'ZSTD' };

/** Whether `compression` is decompressed here (bounded) rather than by geotiff's codecs. */
export const isBoundedCompression = (compression: number): boolean => compression in CODECS;

/** Slack over a block's size besides one row: a writer's padding. */
export const SLACK_BYTES = 1024;

/** What one stored block decodes to: bytes per row, bytes of its rows, and the most it may decompress to. */
export function blockBytes(tile: RawTile): { samples: number; bits: number[]; rowBytes: number; expected: number; limit: number } {
  const samples = tile.planarConfiguration === 2 ? 1 : Math.max(1, tile.samplesPerPixel);
  const bits = Array.from({ length: samples }, (_, s) => tile.bitsPerSample[s] ?? tile.bitsPerSample[0] ?? 8);
  const rowBytes = Math.ceil((tile.width * bits.reduce((a, b) => a + b, 0)) / 8);
  const expected = rowBytes * tile.height;
  // A writer may pad the last strip to the full RowsPerStrip (storedHeight).
  const rows = Math.max(tile.height, tile.storedHeight ?? 0);
  return { samples, bits, rowBytes, expected, limit: rowBytes * (rows + 1) + SLACK_BYTES };
}

/** Thrown by the decoders below when the output would pass `limit`. */
class OverLimit extends Error {
  constructor(readonly limit: number) {
    super(`output past ${limit} bytes`);
  }
}

/**
 * Decompresses one block's LZW, Deflate, PackBits or ZSTD bytes: [<= limit] bytes, in a buffer of
 * its own (the predictor runs in place on it). Throws a SlideError ('absurd-dimensions') when the
 * data would decompress past the block's limit, and a plain Error for corrupt data (the caller names it).
 */
export async function decompressBlock(tile: RawTile): Promise<Uint8Array> {
  const codec = CODECS[tile.compression];
  if (!codec) throw new Error(`compression ${tile.compression} is not decompressed here`);
  const size = blockBytes(tile);
  const bits = new Set(size.bits).size === 1 ? `${size.bits[0]}-bit` : size.bits.join('/') + '-bit';
  const what = `the limit for a ${tile.width}x${Math.max(tile.height, tile.storedHeight ?? 0)} block of ${size.samples} ${bits} sample${size.samples > 1 ? 's' : ''} ` +
    `(${size.expected} bytes, plus one row and ${SLACK_BYTES} bytes of slack)`;
  try {
    if (tile.compression === 5) return lzwDecode(tile.bytes, size.limit);
    if (tile.compression === 32773) return packBitsDecode(tile.bytes, size.limit);
    if (tile.compression === 50000) {
      const out = await zstdBounded(tile.bytes, size.limit);
      if (out.length === 0 && tile.bytes.length > 0) {
        throw new SlideError(tile.file, `${tile.block ?? 'tile'}: ZSTD data does not decode within ${size.limit} bytes, ${what}: corrupt, or more than the block holds; refused`);
      }
      return out;
    }
    return inflateBounded(tile.bytes, size.limit);
  } catch (e) {
    if (!(e instanceof OverLimit)) throw e;
    throw new SlideError(tile.file, `${tile.block ?? 'tile'}: ${codec} data decompresses to more than ${size.limit} bytes, over ${what}; ` +
      'refused before decompressing further', 'absurd-dimensions');
  }
}

let zstd: Promise<{ decode(input: Uint8Array, size: number): Uint8Array }> | null = null;

/** ZSTD data decoded into at most `limit` bytes; empty when it does not fit or is corrupt (zstddec reports no error). */
export async function zstdBounded(input: Uint8Array, limit: number): Promise<Uint8Array> {
  if (!zstd) {
    zstd = import('zstddec/stream').then(async ({ ZSTDDecoder }) => {
      const d = new ZSTDDecoder();
      await d.init();
      return d;
    });
    zstd.catch(() => (zstd = null));
  }
  // With a size given, zstddec allocates it and zstd decodes into it, stopping with an error past it.
  return (await zstd).decode(input, limit); // a copy out of the wasm heap
}

/** zlib (Deflate) data, inflated in 64 KiB chunks; throws OverLimit once the output passes `limit`. */
export function inflateBounded(input: Uint8Array, limit: number): Uint8Array {
  const inflator = new Inflate();
  const keep = inflator.onData.bind(inflator);
  let total = 0;
  inflator.onData = (chunk) => {
    total += chunk.length;
    if (total > limit) throw new OverLimit(limit);
    keep(chunk);
  };
  inflator.push(input, true); // what pako.inflate() does, chunk by chunk
  if (inflator.err) throw new Error(inflator.msg || `inflate failed (zlib status ${inflator.err})`);
  return inflator.result ?? new Uint8Array(0);
}

const CLEAR = 256, EOI = 257, ROOT = 4096;

/** TIFF LZW (MSB first, early change), as geotiff decodes it, into at most `limit` bytes. */
export function lzwDecode(input: Uint8Array, limit: number): Uint8Array {
  const prefix = new Uint16Array(4096); // code -> the code it extends (ROOT for single bytes)
  const suffix = new Uint8Array(4096); // code -> its last byte
  for (let i = 0; i <= EOI; i++) { prefix[i] = ROOT; suffix[i] = i; }
  const stack = new Uint8Array(4096);
  const n = input.length;
  const out = new Uint8Array(limit);
  let o = 0, size = EOI + 1, bits = 9, position = 0;
  const next = (): number => {
    const a = position >>> 3;
    if (a >= n) return EOI; // ran off the end: geotiff ends there too
    const word = (input[a] << 16) | ((a + 1 < n ? input[a + 1] : 0) << 8) | (a + 2 < n ? input[a + 2] : 0);
    const code = (word >>> (24 - (position & 7) - bits)) & ((1 << bits) - 1);
    position += bits;
    return code;
  };
  /** Appends the string of `code`; returns its first byte. */
  const emit = (code: number): number => {
    let len = 0;
    for (let i = code; i !== ROOT; i = prefix[i]) stack[len++] = suffix[i]; // prefix[i] < i: at most 4096 steps
    if (o + len > limit) throw new OverLimit(limit);
    for (let k = len - 1; k >= 0; k--) out[o++] = stack[k];
    return stack[len - 1];
  };
  const add = (code: number, byte: number) => {
    if (size < 4096) { prefix[size] = code; suffix[size] = byte; }
    size++;
  };
  let old: number | undefined;
  let code = next();
  while (code !== EOI) {
    if (code === CLEAR) {
      size = EOI + 1; bits = 9;
      do code = next(); while (code === CLEAR);
      if (code === EOI) break;
      if (code > CLEAR) throw new Error(`corrupted code at scanline ${code}`);
      emit(code);
      old = code;
    } else if (code < size) {
      const first = emit(code);
      if (old !== undefined) add(old, first);
      old = code;
    } else {
      if (old === undefined) throw new Error(`Invalid LZW code: ${code} with no previous code`);
      const first = emit(old);
      if (o + 1 > limit) throw new OverLimit(limit);
      out[o++] = first;
      add(old, first);
      old = code;
    }
    if (size + 1 >= 1 << bits) {
      if (bits === 12) old = undefined;
      else bits++;
    }
    code = next();
  }
  return out.slice(0, o);
}

/** PackBits, as geotiff decodes it (a -128 header repeats 129 times), into at most `limit` bytes. */
export function packBitsDecode(input: Uint8Array, limit: number): Uint8Array {
  const out = new Uint8Array(limit);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const header = (input[i] << 24) >> 24;
    const count = (header < 0 ? -header : header) + 1;
    if (o + count > limit) throw new OverLimit(limit);
    if (header < 0) {
      if (i + 1 >= input.length) throw new Error('PackBits run past the end of the data');
      out.fill(input[i + 1], o, o + count);
      i += 1;
    } else {
      if (i + count >= input.length) throw new Error('PackBits literal past the end of the data');
      out.set(input.subarray(i + 1, i + 1 + count), o);
      i += count;
    }
    o += count;
  }
  return out.slice(0, o);
}

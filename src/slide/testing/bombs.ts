/// <reference path="../pako.d.ts" />
// Decompression bombs for the slide tests (decompress.test.ts, the fuzz mutator): small tile data
// that decodes to far more than any tile holds (Deflate, LZW, PackBits, ZSTD), all zeros.
// Portable (the fuzz mutator also runs for the browser e2e spec).
import { Deflate } from 'pako';

/** zlib data of `bytes` zeros, deflated 1 MiB at a time (about 1 KB per MiB). */
export function deflateBomb(bytes: number): Uint8Array {
  const d = new Deflate({ level: 9 });
  const zeros = new Uint8Array(Math.min(bytes, 2 ** 20));
  for (let left = bytes; left > 0; left -= zeros.length) d.push(left > zeros.length ? zeros : zeros.subarray(0, left), left <= zeros.length);
  if (d.err) throw new Error(`deflate failed: ${d.msg}`);
  return d.result;
}

/** LZW (TIFF: MSB first, early change) codes, packed. */
function lzwWriter() {
  const out: number[] = [];
  let acc = 0, n = 0;
  return {
    put(code: number, bits: number) {
      acc = (acc << bits) | code;
      n += bits;
      while (n >= 8) { out.push((acc >>> (n - 8)) & 255); n -= 8; }
      acc &= (1 << n) - 1;
    },
    bytes(): Uint8Array {
      if (n > 0) out.push((acc << (8 - n)) & 255);
      return Uint8Array.from(out);
    },
  };
}

/**
 * TIFF LZW that decodes to zeros: per dictionary, CLEAR, a 0, then each new code in turn (each the
 * previous string plus a 0: 1 + 2 + ... bytes), up to `lastCode` (at most 4094, where 12-bit codes
 * run out). One full dictionary is about 5.4 KB and decodes to about 7.4 MB. Returns the bytes and
 * the decoded length.
 */
export function lzwBomb(dictionaries: number, lastCode = 4094): { bytes: Uint8Array; decodedLength: number } {
  const w = lzwWriter();
  let bits = 9, decodedLength = 0;
  for (let d = 0; d < dictionaries; d++) {
    w.put(256, bits); // CLEAR, at the width the decoder is reading
    bits = 9;
    w.put(0, bits);
    decodedLength += 1;
    let size = 258; // the decoder's next free code
    for (let code = 258; code <= lastCode; code++) {
      w.put(code, bits); // not yet in the dictionary: the previous string plus its first byte
      decodedLength += code - 256;
      size++;
      if (size + 1 >= 1 << bits) {
        if (bits === 12) break;
        bits++;
      }
    }
  }
  w.put(257, bits); // EOI
  return { bytes: w.bytes(), decodedLength };
}

/** PackBits that decodes to `runs` x 128 zeros (2 bytes a run). */
export function packBitsBomb(runs: number): Uint8Array {
  const out = new Uint8Array(runs * 2);
  for (let i = 0; i < runs; i++) out[i * 2] = 0x81; // -127: repeat the next byte 128 times
  return out;
}

/**
 * A ZSTD frame of `blocks` RLE blocks of 128 KiB zeros (4 bytes each), with no content size in
 * its header (as libtiff writes ZSTD tiles): decoders learn its size only by decoding.
 */
export function zstdBomb(blocks: number): Uint8Array {
  const out = new Uint8Array(6 + blocks * 4);
  out.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3]); // magic; no content size, not single-segment; window 2^17
  for (let i = 0; i < blocks; i++) {
    const header = (i === blocks - 1 ? 1 : 0) | (1 << 1) | (2 ** 17 << 3); // last?, RLE, 128 KiB
    out.set([header & 255, (header >> 8) & 255, (header >> 16) & 255, 0], 6 + i * 4);
  }
  return out;
}

// Decompression bombs (issue #11): a tile whose few compressed KB would decode to hundreds of MB
// is refused with one line naming the file, the tile and the limit, without the memory; the other
// tiles still read (Deflate, LZW, PackBits, ZSTD). The bounded LZW and PackBits decoders decode as
// geotiff's did.
import { once } from 'node:events';
import { createDeflate, deflateSync } from 'node:zlib';
import { getDecoder } from 'geotiff';
import { describe, expect, it } from 'vitest';
import type { ByteSource } from './byte-source.ts';
import { blockBytes, decompressBlock, lzwDecode, packBitsDecode, zstdBounded } from './decompress.ts';
import { SlideError } from './errors.ts';
import type { RawTile } from './raw-tile.ts';
import { openSlide } from './source.ts';
import { lzwBomb, packBitsBomb, zstdBomb } from './testing/bombs.ts';
import { basicTags, layoutTiff, tiffBytes } from './testing/tiff-writer.ts';

const MiB = 2 ** 20;

function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return { name, size: bytes.length, read: async (offset, length) => bytes.slice(offset, Math.min(bytes.length, offset + length)) };
}

/** zlib data of `bytes` zeros, streamed through Node's zlib 1 MiB at a time (never `bytes` in memory). */
async function zlibZeros(bytes: number): Promise<Uint8Array> {
  const z = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  z.on('data', (c: Buffer) => parts.push(c));
  const ended = once(z, 'end');
  const chunk = Buffer.alloc(MiB);
  for (let left = bytes; left > 0; left -= MiB) if (!z.write(chunk)) await once(z, 'drain');
  z.end();
  await ended;
  return new Uint8Array(Buffer.concat(parts));
}

/** RGB [h, w, 3] test pattern. */
function pattern(w: number, h: number, seed: number): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7 + seed * 31 + ((i / 3 / w) | 0) * 5) & 255;
  return px;
}

/** Tile (tx, ty) of a tw x th grid over RGB [h, w, 3] (all tiles whole). */
function cut(px: Uint8Array, w: number, tx: number, ty: number, tw: number, th: number): Uint8Array {
  const t = new Uint8Array(tw * th * 3);
  for (let y = 0; y < th; y++) t.set(px.subarray(((ty * th + y) * w + tx * tw) * 3, ((ty * th + y) * w + (tx + 1) * tw) * 3), y * tw * 3);
  return t;
}

const rawTile = (compression: number, bytes: Uint8Array, width = 64, height = 64): RawTile => ({
  file: 'unit.tiff', levelKey: 8, bytes, compression, photometric: 2, width, height, samplesPerPixel: 3, bitsPerSample: [8, 8, 8],
  planarConfiguration: 1, predictor: 1, jpegTables: null, block: 'tile 0',
});

/** Runs `fn`, expecting the over-limit SlideError; returns it and the growth of resident memory (bytes). */
async function refusal(fn: () => Promise<unknown> | unknown, code = 'absurd-dimensions'): Promise<{ error: SlideError; rss: number; ms: number }> {
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  let error: unknown = null;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - t0;
  const rss = process.memoryUsage().rss - before;
  expect(error).toBeInstanceOf(SlideError);
  expect((error as SlideError).code).toBe(code);
  expect((error as SlideError).message).not.toMatch(/[\r\n]/);
  return { error: error as SlideError, rss, ms };
}

describe('decompression bombs are refused within the tile size', () => {
  it('a Deflate tile of 200 MB of zeros is refused naming the file, the tile and the limit; the other tiles decode', async () => {
    const W = 128, T = 64;
    const px = pattern(W, W, 3);
    const tiles = [0, 1, 2, 3].map((i) => cut(px, W, i % 2, i >> 1, T, T));
    const bomb = await zlibZeros(200 * 10 ** 6);
    expect(bomb.length).toBeLessThan(400_000); // a few hundred KB of compressed data
    const blocks = tiles.map((t, i) => (i === 1 ? bomb : new Uint8Array(deflateSync(t))));
    const bytes = tiffBytes(layoutTiff([{ tiled: true, blocks, tags: basicTags({ width: W, height: W, compression: 8, photometric: 2, tileWidth: T }) }]));
    const name = 'deflate-bomb.tiff';
    const slide = await openSlide(memorySource(name, bytes), { cacheTiles: 0 });
    try {
      const { error, rss, ms } = await refusal(() => slide.readRegion(0, 0, 0, W, W));
      const limit = blockBytes(rawTile(8, bomb, T, T)).limit;
      console.log(`${error.message}\n  (bomb ${bomb.length} bytes; refused in ${ms.toFixed(0)} ms, resident memory ${rss >= 0 ? '+' : ''}${(rss / MiB).toFixed(1)} MiB)`);
      expect(error.message.startsWith(`${name}: tile 1: Deflate data decompresses to more than ${limit} bytes`)).toBe(true);
      expect(error.message).toContain(`${T}x${T} block of 3 8-bit samples (${T * T * 3} bytes`);
      expect(rss).toBeLessThan(150 * MiB);
      for (const i of [0, 2, 3]) {
        const x = (i % 2) * T, y = (i >> 1) * T;
        const region = await slide.readRegion(0, x, y, T, T);
        expect(Buffer.compare(region.data, tiles[i]), `tile ${i}`).toBe(0);
      }
    } finally {
      await slide.close();
    }
  }, 60_000);

  it('an LZW tile of 30 dictionaries of zeros (~220 MB) is refused; a PackBits one of 128 MiB too', async () => {
    const lzw = lzwBomb(30);
    expect(lzw.decodedLength).toBeGreaterThan(200 * 10 ** 6);
    const a = await refusal(() => decompressBlock(rawTile(5, lzw.bytes)));
    console.log(`${a.error.message} (LZW bomb ${lzw.bytes.length} bytes for ${lzw.decodedLength}; resident memory +${(a.rss / MiB).toFixed(1)} MiB)`);
    expect(a.error.message).toMatch(/^unit\.tiff: tile 0: LZW data decompresses to more than \d+ bytes/);
    expect(a.rss).toBeLessThan(150 * MiB);
    const b = await refusal(() => decompressBlock(rawTile(32773, packBitsBomb(MiB))));
    expect(b.error.message).toMatch(/^unit\.tiff: tile 0: PackBits data decompresses to more than \d+ bytes/);
    expect(b.rss).toBeLessThan(150 * MiB);
  });

  it('a ZSTD tile of 200 MiB of zeros with no content size is refused; one that fits decodes', async () => {
    const bomb = zstdBomb(1600); // 6.4 KB
    const z = await refusal(() => decompressBlock(rawTile(50000, bomb)), 'corrupt');
    console.log(`${z.error.message} (ZSTD bomb ${bomb.length} bytes for ${1600 * 2 ** 17}; resident memory +${(z.rss / MiB).toFixed(1)} MiB)`);
    expect(z.error.message).toMatch(/^unit\.tiff: tile 0: ZSTD data does not decode within \d+ bytes, the limit for a 64x64 block/);
    expect(z.rss).toBeLessThan(150 * MiB);
    const fits = await zstdBounded(zstdBomb(2), 2 ** 18);
    expect([fits.length, fits.every((v) => v === 0)]).toEqual([2 ** 18, true]);
    expect((await zstdBounded(zstdBomb(2), 2 ** 18 - 1)).length).toBe(0);
  });

  it('a short last strip padded to the full RowsPerStrip still decodes (the slack)', async () => {
    const W = 64, H = 100, R = 64;
    const px = pattern(W, H, 5);
    const padded = new Uint8Array(W * R * 3); // strip 1: 36 rows of image, written as 64
    padded.set(px.subarray(W * R * 3));
    const blocks = [new Uint8Array(deflateSync(px.subarray(0, W * R * 3))), new Uint8Array(deflateSync(padded))];
    const bytes = tiffBytes(layoutTiff([{ tiled: false, blocks, tags: basicTags({ width: W, height: H, compression: 8, photometric: 2, rowsPerStrip: R }) }]));
    const slide = await openSlide(memorySource('padded-strip.tiff', bytes));
    try {
      expect(Buffer.compare((await slide.readRegion(0, 0, 0, W, H)).data, px)).toBe(0);
    } finally {
      await slide.close();
    }
  });
});

describe('the bounded LZW and PackBits decoders decode as geotiff does', () => {
  const geotiff = async (compression: number, bytes: Uint8Array) => {
    const codec = (await getDecoder(compression, { tileWidth: 1, tileHeight: 1, planarConfiguration: 1, bitsPerSample: [8], predictor: 1 } as never)) as unknown as { decode(b: ArrayBuffer): Promise<ArrayBuffer> };
    return new Uint8Array(await codec.decode(bytes.slice().buffer));
  };

  it('LZW: codes of 9 to 12 bits over two dictionaries', async () => {
    const { bytes, decodedLength } = lzwBomb(2, 2300); // 12-bit codes from 2046 on (geotiff's runs out of memory at code 4094, which refers to entry 4093)
    const ours = lzwDecode(bytes, decodedLength);
    expect(ours.length).toBe(decodedLength);
    expect(ours.every((v) => v === 0)).toBe(true);
    expect(Buffer.compare(ours, await geotiff(5, bytes))).toBe(0);
    expect(() => lzwDecode(bytes, decodedLength - 1)).toThrow(/past/);
    const full = lzwBomb(1); // every code up to 4094
    expect(lzwDecode(full.bytes, full.decodedLength).length).toBe(full.decodedLength);
  });

  it('PackBits: runs, literals and the -128 header', async () => {
    const bytes = Uint8Array.from([0xfe, 7, 2, 1, 2, 3, 0x80, 9, 0, 42, 0x81, 5]);
    const ours = packBitsDecode(bytes, 1000);
    expect(Buffer.compare(ours, await geotiff(32773, bytes))).toBe(0);
    expect(ours.length).toBe(3 + 3 + 129 + 1 + 128);
    expect(() => packBitsDecode(Uint8Array.from([5, 1, 2]), 1000)).toThrow(/past the end/);
  });
});

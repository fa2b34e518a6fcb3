// The decoded-tile cache of SlideFileTiles: a tile read again (validation reads the same tiles
// every epoch) comes from the cache with the same bytes and no slide read; the byte budget evicts
// the least recently used tiles; a budget of 0 caches nothing.
import { describe, expect, it } from 'vitest';
import { SlideFileTiles } from './slide-tiles.ts';
import type { SlideSource } from '../slide/source.ts';
import type { TileGrid } from '../slide/tiles.ts';

const G = 8; // grid tile side (px); the reads resize to S
const grid: TileGrid = {
  tileSize: G, mpp: 0.5, slideMpp: 0.5, tile0: G, cols: 4, rows: 1, level: 0, levelScaleX: 1, levelScaleY: 1, resample: false,
  tiles: Array.from({ length: 4 }, (_, i) => ({ index: i, x: i * G, y: 0, w: G, h: G, tissue: 1 })),
};

/** A slide whose every pixel encodes its x (so tiles differ); counts its region reads. */
function fakeSlide(reads: { n: number }): SlideSource {
  return {
    async readRegion(_level: number, x: number, _y: number, w: number, h: number) {
      reads.n++;
      const data = new Uint8Array(w * h * 3);
      for (let i = 0; i < w * h; i++) data.fill((x + (i % w)) & 255, i * 3, i * 3 + 3);
      return { data, width: w, height: h };
    },
    async close() {},
  } as unknown as SlideSource;
}

function tiles(cacheBytes?: number) {
  const reads = { n: 0 };
  const source = new SlideFileTiles([{ id: 's', source: '/fake.tiff', grid }], { openPath: async () => fakeSlide(reads), cacheBytes });
  return { source, reads };
}

describe('SlideFileTiles decoded-tile cache', () => {
  it('serves a tile read before from the cache, bit for bit, without reading the slide', async () => {
    const { source, reads } = tiles();
    const first = await source.read('s', Int32Array.of(0, 2), 4);
    expect(reads.n).toBe(2);
    const again = await source.read('s', Int32Array.of(2, 0), 4);
    expect(reads.n).toBe(2);
    const row = 4 * 4 * 3;
    expect(again.subarray(0, row)).toEqual(first.subarray(row, 2 * row));
    expect(again.subarray(row)).toEqual(first.subarray(0, row));
    await source.read('s', Int32Array.of(0, 3), 4); // one hit, one miss
    expect(reads.n).toBe(3);
    await source.read('s', Int32Array.of(0), 8); // another size is another tile
    expect(reads.n).toBe(4);
  });

  it('keeps to its byte budget (least recently used out first) and caches nothing at 0', async () => {
    const tile = 4 * 4 * 3;
    const { source, reads } = tiles(2 * tile);
    await source.read('s', Int32Array.of(0, 1), 4);
    await source.read('s', Int32Array.of(0), 4); // 0 is now the most recently used
    await source.read('s', Int32Array.of(2), 4); // evicts 1
    expect(reads.n).toBe(3);
    await source.read('s', Int32Array.of(0, 2), 4);
    expect(reads.n).toBe(3);
    await source.read('s', Int32Array.of(1), 4);
    expect(reads.n).toBe(4);
    const none = tiles(0);
    await none.source.read('s', Int32Array.of(0), 4);
    await none.source.read('s', Int32Array.of(0), 4);
    expect(none.reads.n).toBe(2);
  });
});

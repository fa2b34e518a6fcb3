import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../../scripts/make-fixtures.ts';
import { fromPath } from './node-open.ts';
import { resampleRect } from './resample.ts';
import type { SlideLevel } from './source.ts';
import { chooseLevel, planSlide, planTileGrid, readTile, tileRect } from './tiles.ts';
import { detectTissue, type TissueMask } from './tissue.ts';

const level = (index: number, width: number, height: number, downsample: number): SlideLevel => ({
  index, width, height, downsample, tileWidth: 256, tileHeight: 256, tiled: true, compression: 7, compressionName: 'JPEG (7)', photometric: 6, photometricName: 'YCbCr',
});
const LEVELS = [level(0, 8000, 6000, 1), level(1, 2000, 1500, 4), level(2, 500, 375, 16)];

/** Mask [375, 500] at downsample 16 with tissue in the level-0 box [1600, 4800) x [1600, 3200). */
function boxMask(): TissueMask {
  const width = 500, height = 375;
  const data = new Uint8Array(width * height);
  for (let y = 100; y < 200; y++) for (let x = 100; x < 300; x++) data[y * width + x] = 1;
  return { width, height, data, downsampleX: 16, downsampleY: 16, threshold: 200, fraction: 0 };
}

describe('tile grid planning', () => {
  it('0.25 µm/px slide, 224 px at 0.5 µm/px: 448 px level-0 tiles read from level 0 and resampled', () => {
    const g = planTileGrid(LEVELS, 0.25, boxMask());
    expect([g.tile0, g.cols, g.rows, g.level, g.resample]).toEqual([448, 17, 13, 0, true]);
    // Box 3200 x 1600 level-0 px; tiles whose area is >= 25 % tissue.
    expect(g.tiles.length).toBeGreaterThan(20);
    expect(g.tiles.every((t) => t.x + t.w > 1600 && t.x < 4800 && t.y + t.h > 1600 && t.y < 3200)).toBe(true);
    const t = g.tiles[0];
    expect(tileRect(g, t.index)).toEqual({ x: t.x, y: t.y, w: 448, h: 448 });
    expect(g.tiles.map((x) => x.index)).toEqual([...g.tiles.map((x) => x.index)].sort((a, b) => a - b));
  });
  it('picks an exactly matching level and does not resample', () => {
    const g = planTileGrid(LEVELS, 0.125, boxMask(), { tileSize: 224, mpp: 0.5 }); // 4x: level 1
    expect([g.tile0, g.level, g.resample]).toEqual([896, 1, false]);
    expect(chooseLevel(LEVELS, 900, 224).index).toBe(1);
    expect(chooseLevel(LEVELS, 3000, 224).index).toBe(1);
    expect(chooseLevel(LEVELS, 3584, 224).index).toBe(2);
  });
  it('indices are stable: a higher tissue threshold keeps a subset with the same indices and rects', () => {
    const loose = planTileGrid(LEVELS, 0.25, boxMask(), { minTissue: 0.01 });
    const strict = planTileGrid(LEVELS, 0.25, boxMask(), { minTissue: 0.9 });
    expect(strict.tiles.length).toBeLessThan(loose.tiles.length);
    for (const t of strict.tiles) expect(loose.tiles.find((u) => u.index === t.index)).toMatchObject({ x: t.x, y: t.y });
    expect(() => tileRect(loose, loose.cols * loose.rows)).toThrow(RangeError);
  });
});

describe('tile overlap', () => {
  it('overlap shortens the stride, not the tile: rects overlap by the overlap in level-0 px', () => {
    const plain = planTileGrid(LEVELS, 0.25, boxMask());
    const g = planTileGrid(LEVELS, 0.25, boxMask(), { overlap: 112 }); // 224 px tiles, stride 112 px at 0.5 µm/px
    expect([g.tile0, g.stride0, g.cols, g.rows]).toEqual([448, 224, Math.floor((8000 - 448) / 224) + 1, Math.floor((6000 - 448) / 224) + 1]);
    expect(plain.stride0).toBeUndefined();
    expect(tileRect(g, 1)).toEqual({ x: 224, y: 0, w: 448, h: 448 });
    expect(tileRect(g, g.cols)).toEqual({ x: 0, y: 224, w: 448, h: 448 });
    for (const t of g.tiles) expect(tileRect(g, t.index)).toEqual({ x: t.x, y: t.y, w: t.w, h: t.h });
    expect(g.tiles.length).toBeGreaterThan(3 * plain.tiles.length);
    expect(() => planTileGrid(LEVELS, 0.25, boxMask(), { overlap: 224 })).toThrow(/overlap/);
  });
});

describe('reading tiles from fixtures', () => {
  let dir = '';
  let scene: Uint8Array;
  beforeAll(async () => {
    dir = await ensureFixtures();
    scene = new Uint8Array(readFileSync(`${dir}/scene.rgb`));
  });
  const mad = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

  it('OME 0.25 µm/px: tiles come from SubIFD level 1 without resampling and match the scene', async () => {
    const s = await fromPath(`${dir}/ome-subifd.ome.tiff`);
    const { grid } = await planSlide(s);
    expect([grid.tile0, grid.level, grid.resample]).toEqual([448, 1, false]);
    expect(grid.tiles.length).toBeGreaterThan(0);
    const t = grid.tiles[0];
    const tile = await readTile(s, grid, t.index);
    expect(tile.length).toBe(224 * 224 * 3);
    expect(mad(tile, resampleRect(scene, 960, 720, t.x, t.y, t.w, t.h, 224))).toBeLessThan(1);
    await s.close();
  });
  it('SVS 0.2627 µm/px: tiles are resampled from level 0 to 0.5 µm/px', async () => {
    const s = await fromPath(`${dir}/svs-ycbcr.svs`);
    const { grid, mask } = await planSlide(s, { minTissue: 0.1 });
    expect([grid.tile0, grid.level, grid.resample]).toEqual([426, 0, true]);
    expect(mask.fraction).toBeGreaterThan(0.2);
    for (const t of grid.tiles) {
      const tile = await readTile(s, grid, t.index);
      expect(mad(tile, resampleRect(scene, 960, 720, t.x, t.y, t.w, t.h, 224))).toBeLessThan(3);
    }
    await s.close();
  });
  it('low-resolution reads in blocks give the same mask as one block', async () => {
    const s = await fromPath(`${dir}/vips-pyramid.tiff`);
    const one = await detectTissue(s, { downsample: 6 });
    const many = await detectTissue(s, { downsample: 6, blockSize: 100 }); // level 2 (4x) boxed by 2, in 100 px blocks
    expect([many.width, many.height]).toEqual([120, 90]);
    expect(many.data).toEqual(one.data);
    await s.close();
  });
  it('needs a resolution: unknown mpp is an error unless the user sets it', async () => {
    await expect(fromPath(`${dir}/tiled-lzw.tiff`).then((s) => planSlide(s))).rejects.toMatchObject({ code: 'unknown-resolution' });
    const s = await fromPath(`${dir}/tiled-lzw.tiff`, { mpp: 0.5 });
    expect(s.mppSource).toBe('user');
    const { grid } = await planSlide(s);
    expect([grid.cols, grid.rows]).toEqual([4, 3]);
    expect(grid.tiles.length).toBeGreaterThan(3);
    await s.close();
  });
});

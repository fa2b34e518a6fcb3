// The demo data set generator (scripts/make-demo.ts) on a tiny 2-slide version.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDemo, planDemo, type DemoOptions } from '../../scripts/make-demo.ts';
import { parseManifest } from './manifest.ts';
import { fromPath } from './node-open.ts';
import { planSlide, readTile } from './tiles.ts';

const TINY: DemoOptions = { seed: 3, count: 2, minSide: 900, maxSide: 1200, lesionFraction: 0.1 };
const out = mkdtempSync(join(tmpdir(), 'slide-demo-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Pixels of RGB [n, 3] that are lesion nuclei (dark purple). */
const purple = (rgb: Uint8Array) => {
  let n = 0;
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] < 110 && rgb[i + 1] < 70 && rgb[i + 2] > 80 && rgb[i + 2] > rgb[i + 1] + 40) n++;
  return n;
};

describe('demo data set', () => {
  it('plans deterministically from the seed, with both labels in both splits', () => {
    const a = planDemo({ seed: 7, count: 32 });
    expect(planDemo({ seed: 7, count: 32 })).toEqual(a);
    expect(planDemo({ seed: 8, count: 32 })).not.toEqual(a);
    for (const label of [0, 1]) {
      const splits = a.filter((s) => s.label === label).map((s) => s.split);
      expect(splits.filter((s) => s === 'val').length).toBe(4);
      expect(splits.filter((s) => s === 'train').length).toBe(12);
    }
  });

  it('writes pyramidal TIFFs, a manifest and the tile grids; positives carry lesions, negatives none', async () => {
    const index = await makeDemo(out, TINY);
    const manifest = parseManifest(readFileSync(join(out, 'manifest.csv'), 'utf8'));
    expect(manifest.errors).toEqual([]);
    expect(manifest.rows.map((r) => [r.slide, r.label])).toEqual([['demo-000', 0], ['demo-001', 1]]);
    for (const entry of index.slides) {
      const s = await fromPath(join(out, entry.path));
      expect(s.mpp).toBeCloseTo(0.5, 6);
      expect(s.levels.length).toBeGreaterThan(1);
      expect(s.levels[0].tileWidth).toBe(256);
      const { grid } = await planSlide(s);
      expect(grid).toEqual(entry.grid); // the browser can trust demo.json
      expect(entry.tissueTiles).toBe(grid.tiles.length);
      expect(grid.resample).toBe(false);
      if (entry.label === 1) {
        expect(entry.lesionTiles.length).toBeGreaterThan(0);
        for (const i of entry.lesionTiles) expect(purple(await readTile(s, grid, i))).toBeGreaterThan(500);
      } else expect(entry.lesionTiles).toEqual([]);
      const plain = grid.tiles.filter((t) => !entry.lesionTiles.includes(t.index));
      for (const t of plain.slice(0, 6)) expect(purple(await readTile(s, grid, t.index))).toBeLessThan(500);
      await s.close();
    }
  });

  it('skips regeneration when the stamp matches', async () => {
    const before = statSync(join(out, 'demo-000.tiff')).mtimeMs;
    const t0 = performance.now();
    await makeDemo(out, TINY);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(statSync(join(out, 'demo-000.tiff')).mtimeMs).toBe(before);
  });
});

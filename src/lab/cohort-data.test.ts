// The lab's own-data paths on the grid settings: `data=manifest:<url>` in the hash, a manifest
// cohort as a DataSet (each slide's mpp, level and grid; bad rows named), dropped files with
// subset, grid and the manifest's mpp column.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTexture } from '../../scripts/make-fixtures.ts';
import { ConfigError } from '../core/config.ts';
import { DEFAULT_GRID } from '../slide/cohort.ts';
import { fromPath } from '../slide/node-open.ts';
import { testScene, testSlideBytes, writeTestCohort } from '../slide/testing/cohort-slides.ts';
import { loadManifest } from './dataset.ts';
import { loadDroppedFiles } from './files.ts';
import { labHash, manifestUrlOf, parseLabHash } from './presets.ts';

let dir = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-data-'));
  writeTestCohort(dir, await loadTexture(), { count: 8, width: 1024, height: 768, mpp: 0.25 });
}, 60_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fileFetch = (async (u: string | URL) => new Response(readFileSync(fileURLToPath(u)))) as typeof fetch;
const openFile = (loc: string, o: { mpp?: number; signal?: AbortSignal }) => fromPath(fileURLToPath(loc), o);

describe('data=manifest:<url> in the lab hash', () => {
  it('round-trips with the grid keys, and a bad data value is named', () => {
    const s = parseLabHash('data=manifest:/cohort/manifest.csv&grid.mpp=1&grid.tile=256&grid.overlap=32&subset=4');
    expect(manifestUrlOf(s.lab.data)).toBe('/cohort/manifest.csv');
    expect(s.config.grid).toEqual({ ...DEFAULT_GRID, mpp: 1, tile: 256, overlap: 32 });
    expect(parseLabHash(labHash(s))).toEqual(s);
    expect(() => parseLabHash('data=somewhere')).toThrow(/data: must be demo, synthetic or manifest:/);
    expect(() => parseLabHash('grid.overlap=224')).toThrow(ConfigError);
    expect(() => parseLabHash('grid.overlap=224')).toThrow(/grid\.overlap: must be less than grid\.tile/);
  });
});

describe('a manifest cohort as the lab data set', () => {
  it('plans every slide on the grid, reports its mpp and level, and stratifies subset', async () => {
    const url = pathToFileURL(join(dir, 'manifest.csv')).href;
    const all = await loadManifest(url, 0, fileFetch, { ...DEFAULT_GRID, mpp: 1, tile: 64 }, { open: openFile });
    expect(all.slides).toHaveLength(8);
    expect(all.entries).toHaveLength(8);
    for (const s of all.slides) expect([s.mpp, s.mppSource, s.level, s.levelMpp, s.resample]).toEqual([0.25, 'aperio', 2, 1, false]);
    expect(all.source).toEqual({ kind: 'manifest', url, subset: 0 });
    const sub = await loadManifest(url, 4, fileFetch, { ...DEFAULT_GRID, mpp: 1, tile: 64 }, { open: openFile });
    expect(sub.entries.map((e) => `${e.split}:${e.label}`).sort()).toEqual(['train:0', 'train:0', 'train:1', 'train:1', 'val:0', 'val:1']); // 3+3 train, 1+1 val: round(share x 4), at least one
    // A finer grid: more, smaller level-0 tiles from level 1.
    const fine = await loadManifest(url, 0, fileFetch, { ...DEFAULT_GRID, mpp: 0.5, tile: 64 }, { open: openFile });
    expect(fine.slides[0].level).toBe(1);
    expect(fine.slides[0].tissueTiles).toBeGreaterThan(3 * all.slides[0].tissueTiles);
  });
});

describe('dropped files', () => {
  it('follow subset and the grid, and take the manifest mpp for a file without one', async () => {
    const texture = await loadTexture();
    const files = [0, 1, 2, 3].map((i) => ({ name: `s${i}.tiff`, blob: new Blob([testSlideBytes(testScene(texture, 768, 512, i), 768, 512, { mpp: i === 3 ? null : 0.5, pyramid: [2] }) as Uint8Array<ArrayBuffer>]) }));
    const csv = 'slide,label,split,mpp\ns0,0,train,\ns1,1,train,\ns2,0,val,\ns3,1,val,0.5\n';
    const grid = { ...DEFAULT_GRID, mpp: 1, tile: 64 };
    const set = await loadDroppedFiles([...files, { name: 'm.csv', blob: new Blob([csv]) }], { grid, makeUrl: () => 'blob:x' });
    expect(set.slides.map((s) => s.error ?? `${s.mppSource} level ${s.level} ${s.tissueTiles > 0}`)).toEqual(['aperio level 1 true', 'aperio level 1 true', 'aperio level 1 true', 'user level 1 true']);
    // Without the mpp column the file that says nothing is refused by name; the rest go on.
    const bare = await loadDroppedFiles([...files, { name: 'm.csv', blob: new Blob([csv.replace(',0.5\n', ',\n')]) }], { grid, makeUrl: () => 'blob:x' });
    expect(bare.slides[3].error).toMatch(/no µm per pixel in the file and none in the manifest/);
    expect(bare.entries).toHaveLength(3);
    // subset 2 of two (train, label) groups of two: one of each; the files left out are not strays.
    const csv2 = 'slide,label,split\ns0,0,train\ns1,1,train\ns2,0,train\ns3,1,train\n';
    const sub = await loadDroppedFiles([...files, { name: 'm.csv', blob: new Blob([csv2]) }], { grid, subset: 2, makeUrl: () => 'blob:x' });
    expect(sub.slides.map((s) => s.id)).toEqual(['s0', 's1']);
    expect(sub.issues).toEqual([]);
  });
});

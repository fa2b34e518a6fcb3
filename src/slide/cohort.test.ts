// Cohorts from a manifest: grid µm per pixel at 20x and 10x on generated pyramids (the level read,
// no resampling where a level matches, pixels equal to the scene's box average), the slide's own
// mpp or the manifest's, and every kind of bad row or slide named while the rest go on; slides
// served over HTTP with and without range support.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, statSync, createReadStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTexture } from '../../scripts/make-fixtures.ts';
import { DEFAULT_GRID, loadCohort, planCohortSlide, resolveSlideLocation, type CohortOptions, type GridSettings } from './cohort.ts';
import { fromPath } from './node-open.ts';
import { fromUrl } from './source.ts';
import { readTile } from './tiles.ts';
import { downsampleRgb } from './testing/scene.ts';
import { testScene, testSlideBytes } from './testing/cohort-slides.ts';

const W = 1536, H = 1152;
let dir = '';
let scene: Uint8Array;

const openFile: CohortOptions['open'] = (loc, o) => fromPath(fileURLToPath(loc), o);
const grid = (g: Partial<GridSettings>): GridSettings => ({ ...DEFAULT_GRID, tile: 128, ...g });
const mad = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

/** RGB [size, size, 3] of the box-downsampled scene at (x, y) level-0 px, factor f. */
function reference(x: number, y: number, size: number, f: number): Uint8Array {
  const d = downsampleRgb(scene, W, H, f);
  const out = new Uint8Array(size * size * 3);
  for (let j = 0; j < size; j++) out.set(d.data.subarray(((y / f + j) * d.width + x / f) * 3, ((y / f + j) * d.width + x / f + size) * 3), j * size * 3);
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-test-'));
  const texture = await loadTexture();
  scene = testScene(texture, W, H, 5, true);
  mkdirSync(join(dir, 'slides'));
  // The same scene scanned at 40x (0.25 µm/px, levels 2x and 4x), at 20x (0.5 µm/px, level 2x), without any mpp, and without a pyramid.
  writeFileSync(join(dir, 'slides/s40.tiff'), testSlideBytes(scene, W, H, { mpp: 0.25, pyramid: [2, 4] }));
  writeFileSync(join(dir, 'slides/s20.tiff'), testSlideBytes(scene, W, H, { mpp: 0.5, pyramid: [2] }));
  writeFileSync(join(dir, 'slides/nompp.tiff'), testSlideBytes(scene, W, H, { mpp: null, pyramid: [2, 4] }));
  writeFileSync(join(dir, 'slides/flat.tiff'), testSlideBytes(scene, W, H, { mpp: 0.25, pyramid: [] }));
  writeFileSync(join(dir, 'outside.tiff'), readFileSync(join(dir, 'slides/s40.tiff')));
  mkdirSync(join(dir, 'cohort'));
  writeFileSync(join(dir, 'cohort/manifest.csv'), [
    'slide,label,split,path,mpp',
    's40,1,train,../slides/s40.tiff,', // escapes the manifest's folder
  ].join('\n'));
  writeFileSync(join(dir, 'manifest.csv'), [
    'slide,label,split,path,mpp',
    's40,1,train,slides/s40.tiff,',
    's20,0,val,slides/s20.tiff,',
    'nompp,0,train,slides/nompp.tiff,',
    'nompp-given,1,val,slides/nompp.tiff,0.25',
    'flat,1,train,slides/flat.tiff,',
    'escape,0,train,../outside.tiff,',
    's40,0,train,slides/s20.tiff,', // duplicate id
    'badlabel,2,train,slides/s20.tiff,',
    'badsplit,1,test,slides/s20.tiff,',
    'missing,0,train,slides/missing.tiff,',
    'badmpp,0,train,slides/s20.tiff,-1',
  ].join('\n'));
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('grid µm per pixel on generated pyramids', () => {
  it('20x and 10x on a 40x slide read levels 1 and 2 without resampling; the tiles are the scene box-averaged', async () => {
    const s = await fromPath(join(dir, 'slides/s40.tiff'));
    try {
      for (const [mpp, level, f] of [[0.5, 1, 2], [1, 2, 4]] as const) {
        const plan = await planCohortSlide(s, grid({ mpp }));
        expect([plan.slideMpp, plan.mppSource, plan.grid.level, plan.grid.resample, plan.grid.tile0, plan.levelMpp]).toEqual([0.25, 'aperio', level, false, 128 * f, mpp]);
        expect(plan.grid.tiles.length).toBeGreaterThan(2);
        const t = plan.grid.tiles[Math.floor(plan.grid.tiles.length / 2)];
        const px = await readTile(s, plan.grid, t.index); // [128, 128, 3] at `mpp`
        expect(mad(px, reference(t.x, t.y, 128, f))).toBeLessThan(1); // the level is the box average (rounding only)
      }
      // Between levels: 0.75 µm/px reads level 1 (0.5) and resamples 1.5x.
      const mid = await planCohortSlide(s, grid({ mpp: 0.75 }));
      expect([mid.grid.level, mid.grid.resample, mid.grid.tile0, mid.levelMpp]).toEqual([1, true, 384, 0.5]);
    } finally {
      await s.close();
    }
  });

  it('the same tissue at 20x from a 40x and a 20x scan: same grid, near-identical tiles', async () => {
    const a = await fromPath(join(dir, 'slides/s40.tiff'));
    const b = await fromPath(join(dir, 'slides/s20.tiff'));
    try {
      // s20 holds the same scene as s40 at level 0: the same pixels, said to be 0.5 µm/px.
      const pa = await planCohortSlide(a, grid({ mpp: 0.5 }));
      const pb = await planCohortSlide(b, grid({ mpp: 1 }));
      expect([pa.grid.level, pa.grid.tile0, pa.grid.resample]).toEqual([1, 256, false]);
      expect([pb.grid.level, pb.grid.tile0, pb.grid.resample]).toEqual([1, 256, false]);
      expect(pb.grid.tiles.map((t) => t.index)).toEqual(pa.grid.tiles.map((t) => t.index));
      const t = pa.grid.tiles[0];
      expect(mad(await readTile(a, pa.grid, t.index), await readTile(b, pb.grid, t.index))).toBeLessThan(1);
      // A grid finer than the slide is refused by name, with the slide's mpp.
      await expect(planCohortSlide(b, grid({ mpp: 0.25 }))).rejects.toThrow(/s20\.tiff: grid\.mpp 0\.25 µm\/px is finer than the slide's 0\.5 µm\/px/);
      await expect(planCohortSlide(b, grid({ mpp: 8, tile: 224 }))).rejects.toThrow(/larger than the slide/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('a manifest cohort', () => {
  it('plans good rows and names every bad row or slide with its reason', async () => {
    const url = pathToFileURL(join(dir, 'manifest.csv')).href;
    const cohort = await loadCohort(readFileSync(join(dir, 'manifest.csv'), 'utf8'), url, { grid: grid({ mpp: 0.5 }), open: openFile });
    const byId = Object.fromEntries(cohort.entries.map((e) => [e.row.slide, e]));
    expect(Object.keys(byId)).toEqual(['s40', 's20', 'nompp', 'nompp-given', 'flat', 'escape', 'missing']);
    expect(byId.s40.plan?.grid.level).toBe(1);
    expect(byId.s20.plan?.grid.level).toBe(0);
    expect(byId.nompp.error).toMatch(/no µm per pixel in the file and none in the manifest: add an mpp column/);
    expect(byId['nompp-given'].plan).toMatchObject({ slideMpp: 0.25, mppSource: 'user', levelMpp: 0.5 });
    expect(byId.flat.plan?.sampleStride).toBe(1); // small: read whole; its grid still reads level 0
    expect(byId.escape.error).toMatch(/path "\.\.\/outside\.tiff" leaves the manifest's folder/);
    expect(byId.missing.error).toMatch(/no such file/);
    expect(cohort.issues.join('\n')).toMatch(/manifest\.csv, line 8, slide: duplicate slide "s40" \(first on line 2\)/);
    expect(cohort.issues.join('\n')).toMatch(/line 9, label: must be 0, 1/);
    expect(cohort.issues.join('\n')).toMatch(/line 10, split: must be train or val/);
    expect(cohort.issues.join('\n')).toMatch(/line 12, mpp: must be the slide's µm per pixel/);
    // Same tile grid whether the slide's mpp came from the file or the manifest.
    expect(byId['nompp-given'].plan!.grid.tiles.length).toBe(byId.s40.plan!.grid.tiles.length);
  });

  it('subset keeps the same share of each label and split', async () => {
    const url = pathToFileURL(join(dir, 'manifest.csv')).href;
    const cohort = await loadCohort(readFileSync(join(dir, 'manifest.csv'), 'utf8'), url, { grid: grid({}), open: openFile, subset: 4 });
    // 7 rows (train:0 x3, train:1 x2, val:0, val:1): each group keeps round(share x 4), at least one.
    expect(cohort.entries.map((e) => `${e.row.split}:${e.row.label}`).sort()).toEqual(['train:0', 'train:0', 'train:1', 'val:0', 'val:1']);
  });

  it('resolves paths against the manifest and refuses ones that leave its folder', () => {
    expect(resolveSlideLocation('https://h.org/a/b/m.csv', 'x/s.svs')).toBe('https://h.org/a/b/x/s.svs');
    expect(resolveSlideLocation('https://h.org/a/b/m.csv', 'https://cdn.org/s.svs')).toBe('https://cdn.org/s.svs');
    expect(resolveSlideLocation('file:///data/m.csv', 'my%20slides/s 1.svs')).toBe('file:///data/my%20slides/s%201.svs');
    for (const bad of ['../s.svs', 'x/../../s.svs', '%2e%2e/s.svs', 'x\\..\\..\\s.svs']) expect(() => resolveSlideLocation('https://h.org/a/b/m.csv', bad), bad).toThrow(/leaves the manifest's folder|backslash/);
  });
});

describe('slides over HTTP', () => {
  let server: Server;
  let base = '';
  beforeAll(async () => {
    // A static server; under /norange/ it ignores Range and sends whole files.
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
      const ranges = !path.startsWith('/norange/');
      const file = join(dir, path.replace(/^\/norange\//, '/'));
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        res.writeHead(404).end();
        return;
      }
      const m = ranges ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '') : null;
      if (!m) {
        res.writeHead(200, { 'content-length': size });
        createReadStream(file).pipe(res);
        return;
      }
      const start = Number(m[1]), end = Math.min(size - 1, m[2] ? Number(m[2]) : size - 1);
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
      createReadStream(file, { start, end }).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const text = 'slide,label,split,path\ns40,1,train,slides/s40.tiff\ns20,0,val,slides/s20.tiff\n';
  const openUrl: CohortOptions['open'] = (loc, o) => fromUrl(loc, { ...o, maxWholeFile: 0 });

  it('plans slides by range requests from a manifest URL', async () => {
    const cohort = await loadCohort(text, `${base}/manifest.csv`, { grid: grid({ mpp: 0.5 }), open: openUrl });
    expect(cohort.entries.map((e) => e.error ?? e.plan!.grid.level)).toEqual([1, 0]);
    expect(cohort.entries[0].location).toBe(`${base}/slides/s40.tiff`);
  });

  it('a server without range support: each slide says so, by name', async () => {
    const cohort = await loadCohort(text, `${base}/norange/manifest.csv`, { grid: grid({ mpp: 0.5 }), open: openUrl });
    for (const e of cohort.entries) expect(e.error).toMatch(/the server does not support HTTP range requests .*never downloaded whole/);
  });
});

// Builds the built-in demo data set, deterministically from a seed: real pyramidal, tiled, JPEG
// TIFFs (libvips through sharp) at 0.5 µm/px, tissue blobs textured with real IHC histology on a
// white background; positive slides carry planted lesions (dense dark purple nuclei) in about 5% of
// their tissue tiles (DEMO_LESION_FRACTION, at least one tile), negative slides none. Writes
// manifest.csv and demo.json (the tile grid of every slide, so the browser need not recompute it)
// and a stamp, and skips all work when the stamp matches.
// Usage: npx tsx scripts/make-demo.ts [--out public/demo] [--seed 7] [--count 48] [--lesion-fraction 0.05 | --easy] [--force]
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SlideLevel } from '../src/slide/source.ts';
import type { DemoIndex, DemoSlideEntry } from '../src/slide/demo-index.ts';
import { DEFAULT_MIN_TISSUE, DEFAULT_MPP, DEFAULT_TILE_SIZE, planSlide, planTileGrid, type TileGrid } from '../src/slide/tiles.ts';
import { tissueMaskOf } from '../src/slide/tissue.ts';
import { downsampleBox } from '../src/slide/resample.ts';
import { numberOf, parseCli, usageExit } from '../tools/cli.ts';
import { paintLesion, paintScene, randomBlob, rng, type TissueBlob, type Texture } from '../src/slide/testing/scene.ts';
// sharp, geotiff and the fixture script load only when there is work to do (the stamp check is cheap).

export const DEMO_VERSION = 1;
export const DEMO_MPP = 0.5; // µm per level-0 pixel: the lab's default grid reads level 0 as is

/**
 * Share of a positive slide's tissue tiles given a lesion (at least one): 0.05, realistic sparsity
 * (real lesions are a few percent of the tissue). With about 47 tissue tiles per slide that is 1 to
 * 4 lesion tiles, so a sample of K = 16 tiles misses every lesion of a positive slide about half
 * the time. From random weights the lab's tiny CNN stays at loss ln 2 on it (docs/PLATEAU.md); the
 * "First look" preset starts from the shipped pretrained encoder and learns it in one epoch.
 */
export const DEMO_LESION_FRACTION = 0.05;
/**
 * The easy variant (`--easy`): lesions in 30% of a positive slide's tissue tiles, where a tiny CNN
 * from random weights learns within 70 to 190 end-to-end steps (val AUC 1.00, seeds 11 and 7).
 */
export const DEMO_EASY_LESION_FRACTION = 0.3;
/**
 * Slides of the default demo: 48, so the validation split (a quarter, stratified) holds 12 slides,
 * 6 of each label: 36 positive-negative pairs, not the 4 of a 4-slide split.
 */
export const DEMO_COUNT = 48;

export interface DemoOptions {
  seed: number;
  count: number;
  /** Level-0 size range [min, max] per side. */
  minSide?: number;
  maxSide?: number;
  /** Fraction of a positive slide's tissue tiles that get a lesion. */
  lesionFraction?: number;
  tileSize?: number;
}

export interface DemoSlideSpec {
  slide: string;
  file: string;
  label: 0 | 1;
  split: 'train' | 'val';
  width: number;
  height: number;
  blobs: TissueBlob[];
  /** Seed for lesion placement and drawing. */
  lesionSeed: number;
}

export type { DemoIndex, DemoSlideEntry } from '../src/slide/demo-index.ts';

/** Plans the slides (sizes, tissue shapes, labels, stratified 75/25 split): pure and deterministic. */
export function planDemo(o: DemoOptions): DemoSlideSpec[] {
  const random = rng(o.seed * 7919 + 13);
  const minSide = o.minSide ?? 2560, maxSide = o.maxSide ?? 4096;
  const labels = Array.from({ length: o.count }, (_, i) => (i % 2) as 0 | 1);
  const order = labels.map((_, i) => i).sort(() => 0).map((i) => ({ i, r: random() })).sort((a, b) => a.r - b.r).map((x) => x.i);
  const val = new Set<number>();
  for (const label of [0, 1]) {
    const ofLabel = order.filter((i) => labels[i] === label);
    ofLabel.slice(0, Math.max(1, Math.round(ofLabel.length / 4))).forEach((i) => val.add(i));
  }
  return labels.map((label, i) => {
    const width = Math.round(minSide + random() * (maxSide - minSide));
    const height = Math.round(minSide * 0.75 + random() * (maxSide - minSide) * 0.75);
    const pieces = 1 + Math.floor(random() * 3);
    const area = 0.12 + random() * 0.4; // target tissue fraction of the slide
    const r = Math.sqrt((area * width * height) / (pieces * Math.PI));
    const blobs = Array.from({ length: pieces }, (_, k) => {
      const cx = width * ((k + 0.5) / pieces) + (random() - 0.5) * width * 0.1;
      const cy = height * (0.35 + random() * 0.3);
      return randomBlob(random, cx, cy, Math.min(r, height * 0.42, (width / pieces) * 0.45));
    });
    const slide = `demo-${String(i).padStart(3, '0')}`;
    return { slide, file: `${slide}.tiff`, label, split: val.has(i) ? 'val' : 'train', width, height, blobs, lesionSeed: Math.floor(random() * 2 ** 31) } as DemoSlideSpec;
  });
}

function levelsOf(width: number, height: number): SlideLevel[] {
  const base = { tileWidth: 256, tileHeight: 256, tiled: true, compression: 7, compressionName: 'JPEG (7)', photometric: 6, photometricName: 'YCbCr' };
  return [{ ...base, index: 0, width, height, downsample: 1 }];
}

/** Paints one slide (RGB [height, width, 3]) and plants its lesions; returns the lesion tile indices. */
export function renderSlide(spec: DemoSlideSpec, texture: Texture, o: DemoOptions): { rgb: Uint8Array; lesionTiles: number[] } {
  const rgb = paintScene(spec.width, spec.height, spec.blobs, texture);
  if (spec.label === 0) return { rgb, lesionTiles: [] };
  // Plan the grid on this raster's own tissue mask, then plant lesions inside chosen tissue tiles.
  const f = 16;
  const low = downsampleBox(rgb, spec.width, spec.height, f);
  const m = tissueMaskOf(low.data, low.width, low.height);
  const mask = { ...m, width: low.width, height: low.height, downsampleX: spec.width / low.width, downsampleY: spec.height / low.height };
  // Prefer tiles full of tissue; small slides may have none, then take the best there are.
  const plan = (minTissue: number) => planTileGrid(levelsOf(spec.width, spec.height), DEMO_MPP, mask, { tileSize: o.tileSize ?? DEFAULT_TILE_SIZE, minTissue });
  const grid = [0.9, 0.6, 0.4].map(plan).find((g) => g.tiles.length > 0);
  if (!grid) throw new Error(`${spec.slide}: no tissue tile to plant a lesion in`);
  const random = rng(spec.lesionSeed);
  const tissueTiles = plan(DEFAULT_MIN_TISSUE).tiles.length;
  const n = Math.min(grid.tiles.length, Math.max(1, Math.round(tissueTiles * (o.lesionFraction ?? DEMO_LESION_FRACTION))));
  const pool = grid.tiles.map((t) => ({ t, r: random() })).sort((a, b) => a.r - b.r).slice(0, n).map((x) => x.t);
  for (const t of pool) {
    const size = Math.round(t.w * (0.55 + random() * 0.3));
    paintLesion(rgb, spec.width, spec.height, t.x + Math.floor(random() * (t.w - size)), t.y + Math.floor(random() * (t.h - size)), size, random);
  }
  return { rgb, lesionTiles: pool.map((t) => t.index).sort((a, b) => a - b) };
}

async function writeSlide(path: string, rgb: Uint8Array, width: number, height: number): Promise<void> {
  const { default: sharp } = await import('sharp');
  await sharp(rgb, { raw: { width, height, channels: 3 } })
    .tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 80, tileWidth: 256, tileHeight: 256, xres: 1000 / DEMO_MPP, yres: 1000 / DEMO_MPP, resolutionUnit: 'cm' })
    .toFile(path);
}

/** Generates the data set into `out` unless its stamp already matches. Returns the index. */
export async function makeDemo(out: string, o: DemoOptions, force = false, log: (s: string) => void = () => undefined): Promise<DemoIndex> {
  const stampPath = join(out, 'stamp.json');
  const stamp = JSON.stringify({ version: DEMO_VERSION, seed: o.seed, count: o.count, minSide: o.minSide, maxSide: o.maxSide, tileSize: o.tileSize, lesionFraction: o.lesionFraction });
  if (!force && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp && existsSync(join(out, 'demo.json'))) {
    return JSON.parse(readFileSync(join(out, 'demo.json'), 'utf8')) as DemoIndex;
  }
  rmSync(stampPath, { force: true });
  mkdirSync(out, { recursive: true });
  const { loadTexture } = await import('./make-fixtures.ts');
  const { fromPath } = await import('../src/slide/node-open.ts');
  const texture = await loadTexture();
  const specs = planDemo(o);
  const tileSize = o.tileSize ?? DEFAULT_TILE_SIZE;
  const entries: DemoSlideEntry[] = [];
  let pending: Promise<void> = Promise.resolve();
  const lesions = new Map<string, number[]>();
  for (const spec of specs) {
    const { rgb, lesionTiles } = renderSlide(spec, texture, o); // paint the next slide while the last one encodes
    lesions.set(spec.slide, lesionTiles);
    await pending;
    pending = writeSlide(join(out, spec.file), rgb, spec.width, spec.height);
  }
  await pending;
  for (const spec of specs) {
    const source = await fromPath(join(out, spec.file));
    try {
      const { grid } = await planSlide(source, { tileSize, mpp: DEFAULT_MPP, minTissue: DEFAULT_MIN_TISSUE });
      const kept = new Set(grid.tiles.map((t) => t.index));
      const lesionTiles = (lesions.get(spec.slide) ?? []).filter((i) => kept.has(i));
      entries.push({ slide: spec.slide, path: spec.file, label: spec.label, split: spec.split, width: spec.width, height: spec.height, mpp: DEMO_MPP, tissueTiles: grid.tiles.length, lesionTiles, grid });
      log(`${spec.slide} label ${spec.label} ${spec.split}: ${spec.width}x${spec.height}, ${grid.tiles.length} tissue tiles, ${lesionTiles.length} with lesion`);
    } finally {
      await source.close();
    }
  }
  const index: DemoIndex = { version: DEMO_VERSION, seed: o.seed, count: o.count, tileSize, mpp: DEFAULT_MPP, minTissue: DEFAULT_MIN_TISSUE, slides: entries };
  writeFileSync(join(out, 'manifest.csv'), ['slide,label,split,path', ...entries.map((e) => `${e.slide},${e.label},${e.split},${e.path}`)].join('\n') + '\n');
  writeFileSync(join(out, 'demo.json'), JSON.stringify(index));
  writeFileSync(stampPath, stamp);
  return index;
}

const USAGE = `usage: npm run demo -- [--out public/demo] [--seed 7] [--count ${DEMO_COUNT}] [--lesion-fraction ${DEMO_LESION_FRACTION} | --easy] [--force]
Generates the demo data set (tiled pyramidal TIFF slides textured with real IHC, lesions planted
in ${Math.round(DEMO_LESION_FRACTION * 100)}% of the positives' tissue tiles, a manifest). --easy plants them in ${Math.round(DEMO_EASY_LESION_FRACTION * 100)}% (a tiny CNN from
random weights learns that). Skips the work when the folder already holds the same data set.`;

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseCli(process.argv.slice(2), {
    out: { type: 'string' }, seed: { type: 'string' }, count: { type: 'string' }, 'lesion-fraction': { type: 'string' }, easy: { type: 'boolean' }, force: { type: 'boolean' },
  }, USAGE);
  if (positionals.length) usageExit(`unexpected argument '${positionals[0]}'`, USAGE);
  if (values.easy && values['lesion-fraction'] !== undefined) usageExit('give --easy or --lesion-fraction, not both', USAGE);
  const out = resolve(values.out ?? 'public/demo');
  const lesionFraction = values.easy ? DEMO_EASY_LESION_FRACTION : numberOf(values['lesion-fraction'], 'lesion-fraction', DEMO_LESION_FRACTION);
  const o: DemoOptions = { seed: numberOf(values.seed, 'seed', 7, true), count: numberOf(values.count, 'count', DEMO_COUNT, true), lesionFraction };
  if (!(o.count >= 2 && o.count <= 200 && o.lesionFraction! > 0 && o.lesionFraction! <= 1)) usageExit('--count must be between 2 and 200, --lesion-fraction in (0, 1]', USAGE);
  const t0 = performance.now();
  const index = await makeDemo(out, o, Boolean(values.force), (s) => console.log(s));
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const counts = index.slides.map((s) => s.tissueTiles);
  console.log(`demo: ${index.slides.length} slides in ${out} (${secs} s); tissue tiles min ${Math.min(...counts)}, max ${Math.max(...counts)}, total ${counts.reduce((a, b) => a + b, 0)}`);
}

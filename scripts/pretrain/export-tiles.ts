// Unlabeled tiles for self-supervised pretraining (scripts/pretrain/pretrain.py), cut from demo
// slides made with another seed than the lab's demo (npm run demo -- --out /tmp/pretrain-slides
// --seed 1234 ...). Reads only each slide's file and its tissue grid from demo.json: never its
// label, split or lesionTiles (the pretext task must not see them).
//
// Every sample is a context window of (1 + context) x 224 level-0 pixels at 0.5 µm/px around a
// random point of a tissue tile, box-averaged to `size` px, so that any `size / (1 + context)` px
// window of it at an integer offset is exactly what the lab reads for a 224-px tile at that
// position (readTile + resampleRect, 224 -> 32 is a 7 x 7 box average). pretrain.py cuts its two
// views from the window: overlapping, same magnification as the lab's tiles.
//
// Writes a NumPy .npy, uint8 [N, size, size, 3] (RGB, HWC), and <out>.json (how it was made).
//   npx tsx scripts/pretrain/export-tiles.ts --demo /tmp/pretrain-slides/demo.json --out /tmp/pretrain-tiles.npy
// (npm run pretrain runs it as one step of the whole pipeline: scripts/pretrain/run.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DemoIndex } from '../../src/slide/demo-index.ts';
import { fromPath } from '../../src/slide/node-open.ts';
import { resampleRect } from '../../src/slide/resample.ts';
import { rng } from '../../src/slide/testing/scene.ts';
import { numberOf, parseCli, usageExit } from '../../tools/cli.ts';

export const USAGE = `usage: npx tsx scripts/pretrain/export-tiles.ts --demo <demo.json> --out <tiles.npy> [--tile 32] [--context 0.5] [--per-tile 4] [--seed 1]
Cuts unlabeled context windows around tissue tiles of generated slides for self-supervised
pretraining: uint8 [N, S, S, 3] with S = tile x (1 + context); reads no labels or lesion masks.`;

/** A NumPy v1 .npy header for a C-order uint8 array. */
export function npyHeader(shape: number[], descr = '|u1'): Uint8Array {
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  dict += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + dict.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, dict.length, true);
  out.set(new TextEncoder().encode(dict), 10);
  return out;
}

export interface ExportOptions {
  /** The lab's tile size the windows are made for (224 level-0 px -> tile px). */
  tile: number;
  /** Extra context around a tile, as a fraction of the tile side (0.5: a 1.5-tile window). */
  context: number;
  /** Windows per tissue tile. */
  perTile: number;
  seed: number;
}

export async function exportTiles(demoJson: string, o: ExportOptions, log: (s: string) => void = () => undefined): Promise<{ data: Uint8Array; n: number; size: number; slides: string[] }> {
  const index = JSON.parse(readFileSync(demoJson, 'utf8')) as DemoIndex;
  const base = dirname(resolve(demoJson));
  const size = Math.round(o.tile * (1 + o.context));
  const chunks: Uint8Array[] = [];
  const random = rng(o.seed * 2654435761);
  for (const s of index.slides) {
    const grid = s.grid; // tissue tiles only: label, split and lesionTiles are not read
    const src = await fromPath(join(base, s.path));
    try {
      const lvl = src.levels[0];
      const full = await src.readRegion(0, 0, 0, lvl.width, lvl.height); // one decode per slide
      const t0 = grid.tile0;
      const win = Math.round(t0 * (1 + o.context));
      const step = t0 / o.tile; // level-0 px per output px (7 at 224 -> 32)
      for (const t of grid.tiles) {
        for (let k = 0; k < o.perTile; k++) {
          // A window around a random point of the tile, on the output pixel lattice, inside the slide.
          const cx = t.x + random() * t.w, cy = t.y + random() * t.h;
          const snap = (v: number, max: number) => Math.max(0, Math.min(max - win, Math.round((v - win / 2) / step) * step));
          const x0 = snap(cx, lvl.width), y0 = snap(cy, lvl.height);
          chunks.push(resampleRect(full.data, full.width, full.height, x0, y0, win, win, size));
        }
      }
      log(`${s.slide}: ${grid.tiles.length} tissue tiles -> ${grid.tiles.length * o.perTile} windows`);
    } finally {
      await src.close();
    }
  }
  // Shuffle the windows (a fixed permutation) so that any prefix mixes all slides.
  const order = chunks.map((_, i) => ({ i, r: random() })).sort((a, b) => a.r - b.r).map((x) => x.i);
  const data = new Uint8Array(chunks.length * size * size * 3);
  order.forEach((i, n) => data.set(chunks[i], n * size * size * 3));
  return { data, n: chunks.length, size, slides: index.slides.map((s) => s.slide) };
}

/** Writes the windows as <out> (.npy, uint8 [N, S, S, 3]) and <out>.json (how they were made). */
export function writeTiles(out: string, demoJson: string, o: ExportOptions, r: Awaited<ReturnType<typeof exportTiles>>, seconds: number): void {
  mkdirSync(dirname(resolve(out)), { recursive: true });
  const header = npyHeader([r.n, r.size, r.size, 3]);
  const file = new Uint8Array(header.length + r.data.length);
  file.set(header, 0);
  file.set(r.data, header.length);
  writeFileSync(out, file);
  const index = JSON.parse(readFileSync(demoJson, 'utf8')) as DemoIndex;
  writeFileSync(`${out}.json`, JSON.stringify({ demo: resolve(demoJson), demoSeed: index.seed, slides: r.slides, windows: r.n, size: r.size, ...o, seconds: Math.round(seconds), labelsRead: false }, null, 1));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseCli(process.argv.slice(2), {
    demo: { type: 'string' }, out: { type: 'string' }, tile: { type: 'string' }, context: { type: 'string' }, 'per-tile': { type: 'string' }, seed: { type: 'string' },
  }, USAGE);
  if (positionals.length) usageExit(`unexpected argument '${positionals[0]}'`, USAGE);
  if (!values.demo || !values.out) usageExit('give --demo <demo.json> and --out <tiles.npy>', USAGE);
  const o: ExportOptions = {
    tile: numberOf(values.tile, 'tile', 32, true),
    context: numberOf(values.context, 'context', 0.5),
    perTile: numberOf(values['per-tile'], 'per-tile', 4, true),
    seed: numberOf(values.seed, 'seed', 1, true),
  };
  const t0 = performance.now();
  const r = await exportTiles(values.demo, o, (s) => console.log(s));
  const secs = (performance.now() - t0) / 1000;
  writeTiles(values.out, values.demo, o, r, secs);
  console.log(`wrote ${values.out}: ${r.n} windows of ${r.size}x${r.size} px from ${r.slides.length} slides in ${secs.toFixed(1)} s`);
}

// Data sets the lab trains on: the built-in demo slides (demo.json: each slide's tile grid, so the
// browser need not detect tissue again), synthetic tiles (no files), or files a user dropped
// with a manifest CSV. A slide that cannot be used is kept in the list with its error; the rest
// go on. The ranks read slide files themselves from the URLs (served files or blob: URLs).
import { stratifiedSubset, type SlideEntry } from '../core/sampler.ts';
import { syntheticSlides, type SlideTiles, type TileSourceSpec } from '../core/tiles.ts';
import type { DemoIndex } from '../slide/demo-index.ts';

export { stratifiedSubset };

export interface GridInfo {
  cols: number;
  rows: number;
  /** Level-0 pixels per tile side. */
  tile0: number;
  /** Level-0 rectangles [x, y, w, h] of the tissue tiles, in tile-index order. */
  rects: number[];
}

/** One row of the data panel. */
export interface SlideInfo {
  id: string;
  label: 0 | 1 | null;
  split: 'train' | 'val' | null;
  tissueTiles: number;
  /** Where the slide file is (served path or blob: URL); absent for synthetic slides. */
  url?: string;
  width?: number;
  height?: number;
  grid?: GridInfo;
  /** Grid tile indices (engine tile indices) with planted lesions, when known (demo ground truth). */
  lesionTiles?: number[];
  /** The dropped file itself (the viewer reads it without a URL round trip). */
  blob?: Blob;
  /** Why this slide is not used, in words. */
  error?: string;
}

export type DataSource =
  | { kind: 'demo'; url: string; subset: number }
  | { kind: 'synthetic'; count: number; seed: number; tilesPerSlide: number; subset: number }
  | { kind: 'files'; names: string[] };

export interface DataSet {
  name: string;
  source: DataSource;
  /** Every slide, usable or not. */
  slides: SlideInfo[];
  /** The usable slides, as the engine sees them. */
  entries: SlideEntry[];
  tileSpec: TileSourceSpec;
  /** Problems that are not about one slide (manifest lines, unmatched files). */
  issues: string[];
}


export function entriesOf(slides: SlideInfo[]): SlideEntry[] {
  return slides
    .filter((s) => !s.error && s.label !== null && s.split !== null && s.tissueTiles > 0)
    .map((s) => ({ id: s.id, label: s.label!, split: s.split!, numTiles: s.tissueTiles }));
}

function rectsOf(tiles: { x: number; y: number; w: number; h: number }[]): number[] {
  return tiles.flatMap((t) => [t.x, t.y, t.w, t.h]);
}

/** The demo data set from demo.json; slide files next to it. */
export async function loadDemo(url = '/demo/demo.json', subset = 0, fetcher: typeof fetch = fetch): Promise<DataSet> {
  let res: Response;
  try {
    res = await fetcher(url);
  } catch (e) {
    throw new Error(`could not fetch the demo data set (${url}): ${(e as Error).message}`);
  }
  if (!res.ok) throw new Error(`the demo data set is missing (${url}: HTTP ${res.status}); run \`npx tsx scripts/make-demo.ts\``);
  const json = (await res.json()) as DemoIndex;
  if (!Array.isArray(json.slides)) throw new Error(`${url} is not a demo index (no slides)`);
  const base = new URL(url, globalThis.location?.href ?? 'http://localhost/');
  const slides: SlideInfo[] = stratifiedSubset(json.slides, subset).map((s) => ({
    id: s.slide,
    label: s.label,
    split: s.split,
    tissueTiles: s.grid.tiles.length,
    url: new URL(s.path, base).href,
    width: s.width,
    height: s.height,
    grid: { cols: s.grid.cols, rows: s.grid.rows, tile0: s.grid.tile0, rects: rectsOf(s.grid.tiles) },
    // demo.json lists grid indices; the engine's tile index is the position in grid.tiles.
    lesionTiles: (s.lesionTiles ?? []).map((g) => s.grid.tiles.findIndex((t) => t.index === g)).filter((i) => i >= 0),
  }));
  const byId = new Map(json.slides.map((s) => [s.slide, s]));
  const tiles: SlideTiles[] = slides.map((s) => ({ id: s.id, source: s.url!, grid: byId.get(s.id)!.grid }));
  return { name: 'demo', source: { kind: 'demo', url, subset }, slides, entries: entriesOf(slides), tileSpec: { kind: 'slides', slides: tiles }, issues: [] };
}

/** Synthetic slides: positive slides carry "lesion" tiles; no files. */
export function loadSynthetic(count = 16, seed = 7, tilesPerSlide = 32, subset = 0): DataSet {
  const all = syntheticSlides(count, seed, tilesPerSlide);
  const chosen = stratifiedSubset(all, subset);
  const slides: SlideInfo[] = chosen.map((s) => ({ id: s.id, label: s.label, split: s.split, tissueTiles: s.numTiles }));
  return {
    name: 'synthetic',
    source: { kind: 'synthetic', count, seed, tilesPerSlide, subset },
    slides,
    entries: entriesOf(slides),
    tileSpec: { kind: 'synthetic', seed, slides: chosen },
    issues: [],
  };
}

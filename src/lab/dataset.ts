// Data sets the lab trains on: the built-in demo slides (demo.json: each slide's tile grid, so the
// browser need not detect tissue again), synthetic tiles (no files), or files a user dropped
// with a manifest CSV. A slide that cannot be used is kept in the list with its error; the rest
// go on. The ranks read slide files themselves from the URLs (served files or blob: URLs).
// A manifest by URL (`data=manifest:<url>`) is a cohort on any static server that answers range
// requests; the tile grid follows the config's `grid` (the demo set is re-planned when it differs).
import { stratifiedSubset, type SlideEntry } from '../core/sampler.ts';
import { syntheticSlides, type SlideTiles, type TileSourceSpec } from '../core/tiles.ts';
import type { DemoIndex } from '../slide/demo-index.ts';
import { DEFAULT_GRID, loadCohort, sameGrid, type Cohort, type CohortOptions, type GridSettings, type SlidePlanInfo } from '../slide/cohort.ts';
import { fromUrl } from '../slide/source.ts';
import { tileRect } from '../slide/tiles.ts';

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
  /** The slide's µm per level-0 pixel and where it came from (file metadata, or 'user': the manifest). */
  mpp?: number;
  mppSource?: string;
  /** The pyramid level tiles are read from, its µm per pixel, and whether tiles are resampled. */
  level?: number;
  levelMpp?: number;
  resample?: boolean;
}

export type DataSource =
  | { kind: 'demo'; url: string; subset: number }
  | { kind: 'synthetic'; count: number; seed: number; tilesPerSlide: number; subset: number }
  | { kind: 'files'; names: string[] }
  | { kind: 'manifest'; url: string; subset: number };

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
export async function loadDemo(url = '/demo/demo.json', subset = 0, fetcher: typeof fetch = fetch, grid: GridSettings = DEFAULT_GRID, options: { open?: CohortOptions['open']; signal?: AbortSignal } = {}): Promise<DataSet> {
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
  const made: GridSettings = { mpp: json.mpp, tile: json.tileSize, overlap: 0, minTissue: json.minTissue, tissueThreshold: 0 };
  if (!sameGrid(grid, made)) return replanDemo(json, url, base.href, subset, grid, options);
  const slides: SlideInfo[] = stratifiedSubset(json.slides, subset).map((s) => ({
    id: s.slide,
    label: s.label,
    split: s.split,
    tissueTiles: s.grid.tiles.length,
    url: new URL(s.path, base).href,
    width: s.width,
    height: s.height,
    mpp: s.mpp,
    level: s.grid.level,
    levelMpp: s.grid.slideMpp / s.grid.levelScaleX,
    resample: s.grid.resample,
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

/** Opens a served slide by range requests only (a server that ignores Range is refused, by name). */
export const openServed: CohortOptions['open'] = (location, o) => fromUrl(location, { ...o, maxWholeFile: 0 });

/** A DataSet from a planned cohort: one row per manifest row (bad ones with their reason). */
export function cohortDataSet(name: string, source: DataSource, cohort: Cohort, extra: (e: Cohort['entries'][number], p: SlidePlanInfo) => Partial<SlideInfo> = () => ({})): DataSet {
  const tiles: SlideTiles[] = [];
  const slides: SlideInfo[] = cohort.entries.map((e) => {
    const info: SlideInfo = { id: e.row.slide, label: e.row.label, split: e.row.split, tissueTiles: 0 };
    if (e.error || !e.plan || !e.location) return { ...info, error: e.error ?? 'not planned' };
    const p = e.plan;
    tiles.push({ id: e.row.slide, source: e.location, grid: p.grid });
    return {
      ...info, tissueTiles: p.grid.tiles.length, url: e.location, width: p.width, height: p.height,
      mpp: p.slideMpp, mppSource: p.mppSource, level: p.grid.level, levelMpp: p.levelMpp, resample: p.grid.resample,
      grid: { cols: p.grid.cols, rows: p.grid.rows, tile0: p.grid.tile0, rects: rectsOf(p.grid.tiles) },
      ...extra(e, p),
    };
  });
  return { name, source, slides, entries: entriesOf(slides), tileSpec: { kind: 'slides', slides: tiles }, issues: cohort.issues };
}

/**
 * A cohort from a manifest URL (`data=manifest:<url>`): its `path` column holds URLs relative to
 * it, slides are read with HTTP range requests (never downloaded whole), and every slide is
 * planned on `grid`. `subset` keeps that many slides, stratified by label and split.
 */
export async function loadManifest(url: string, subset = 0, fetcher: typeof fetch = fetch, grid: GridSettings = DEFAULT_GRID, options: { open?: CohortOptions['open']; signal?: AbortSignal; onProgress?: CohortOptions['onProgress'] } = {}): Promise<DataSet> {
  const abs = new URL(url, globalThis.location?.href ?? 'http://localhost/').href;
  let res: Response;
  try {
    res = await fetcher(abs, { signal: options.signal });
  } catch (e) {
    throw new Error(`could not fetch the manifest ${abs}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new Error(`the manifest ${abs} could not be read (HTTP ${res.status})`);
  const cohort = await loadCohort(await res.text(), abs, { grid, subset, open: options.open ?? openServed, signal: options.signal, onProgress: options.onProgress });
  const name = decodeURIComponent(new URL(abs).pathname.replace(/^.*\//, '')) || abs;
  return cohortDataSet(name, { kind: 'manifest', url, subset }, cohort);
}

/** The demo set on another grid than demo.json's: planned again from the served files; lesions follow their level-0 rectangles. */
async function replanDemo(json: DemoIndex, url: string, indexUrl: string, subset: number, grid: GridSettings, options: { open?: CohortOptions['open']; signal?: AbortSignal }): Promise<DataSet> {
  const rows = ['slide,label,split,path,mpp', ...json.slides.map((s) => `${s.slide},${s.label},${s.split},${s.path},${s.mpp}`)].join('\n');
  const cohort = await loadCohort(rows, indexUrl, { grid, subset, open: options.open ?? openServed, signal: options.signal });
  const byId = new Map(json.slides.map((s) => [s.slide, s]));
  return cohortDataSet('demo', { kind: 'demo', url, subset }, cohort, (e, p) => {
    const d = byId.get(e.row.slide)!;
    const lesions = (d.lesionTiles ?? []).map((i) => tileRect(d.grid, i));
    // A tile is a lesion tile when its centre lies in one of the demo grid's lesion tiles.
    const lesionTiles = p.grid.tiles.flatMap((t, i) => (lesions.some((r) => t.x + t.w / 2 >= r.x && t.x + t.w / 2 < r.x + r.w && t.y + t.h / 2 >= r.y && t.y + t.h / 2 < r.y + r.h) ? [i] : []));
    return { lesionTiles };
  });
}

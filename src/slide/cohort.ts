// A cohort given by a manifest: every row's slide found relative to the manifest (a URL, or a
// local file as a file: URL), opened, its µm per pixel checked against the grid the user asked
// for, and its tile grid planned. Framework-free and transport-free: the caller says how a
// location opens (fromUrl in the browser, fromPath in Node). Every bad row or slide is reported by
// name with the reason, and the rest of the cohort goes on.
import { stratifiedSubset } from '../core/sampler.ts';
import { asSlideError, SlideError } from './errors.ts';
import { formatIssues, parseManifest, type ManifestRow } from './manifest.ts';
import type { MppSource } from './metadata.ts';
import type { SlideSource } from './source.ts';
import { planSlide, type TileGrid, type TileGridOptions } from './tiles.ts';
import type { TissueOptions } from './tissue.ts';

/** The grid settings (the config's `grid`): tiles of `tile` px at `mpp` µm/px, `overlap` px apart less, tissue. */
export interface GridSettings {
  mpp: number;
  tile: number;
  overlap: number;
  minTissue: number;
  /** 0: Otsu's threshold. */
  tissueThreshold: number;
}

export const DEFAULT_GRID: GridSettings = { mpp: 0.5, tile: 224, overlap: 0, minTissue: 0.25, tissueThreshold: 0 };

/** planSlide's options for grid settings. */
export function planOptions(grid: GridSettings): TileGridOptions & TissueOptions {
  return { tileSize: grid.tile, mpp: grid.mpp, overlap: grid.overlap, minTissue: grid.minTissue, ...(grid.tissueThreshold ? { threshold: grid.tissueThreshold } : {}) };
}

/** Whether two grid settings cut the same tiles. */
export function sameGrid(a: GridSettings, b: GridSettings): boolean {
  return a.mpp === b.mpp && a.tile === b.tile && a.overlap === b.overlap && a.minTissue === b.minTissue && a.tissueThreshold === b.tissueThreshold;
}

/** A grid coarser than the slide by less than this is still "the slide's resolution" (scanner rounding: 0.2527 vs 0.25). */
export const MPP_TOLERANCE = 1.05;

/**
 * Where a manifest row's slide is: `path` resolved against the manifest's own URL (http:, https:
 * or file:). A relative path must stay inside the manifest's folder; an absolute URL or an
 * absolute path ('/...') is taken as given. Throws an Error with the reason.
 */
export function resolveSlideLocation(manifestUrl: string, path: string): string {
  const base = new URL(manifestUrl);
  const folder = new URL('./', base);
  if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('/')) return new URL(path, base).href;
  if (path.includes('\\')) throw new Error(`path "${path}" has a backslash: use / between folders`);
  const resolved = new URL(path, folder);
  if (resolved.origin !== folder.origin || !resolved.pathname.startsWith(folder.pathname)) {
    throw new Error(`path "${path}" leaves the manifest's folder (${decodeURIComponent(folder.pathname)}): relative paths must stay inside it`);
  }
  return resolved.href;
}

export interface SlidePlanInfo {
  grid: TileGrid;
  /** Level-0 size in pixels. */
  width: number;
  height: number;
  /** The slide's µm per level-0 pixel, and where it came from ('user': the manifest's mpp column). */
  slideMpp: number;
  mppSource: MppSource;
  /** The pyramid level tiles are read from, and its µm per pixel. */
  levelMpp: number;
  /** Every how many blocks tissue detection read per axis (1: all; more on a slide without a pyramid). */
  sampleStride: number;
}

/**
 * Checks a slide's µm per pixel against the grid and plans its tiles. Throws a SlideError naming
 * the slide: no µm per pixel (neither the file nor the manifest), a grid finer than the slide
 * (tiles would be upsampled), a tile larger than the slide, or no tissue tile.
 */
export async function planCohortSlide(source: SlideSource, grid: GridSettings, options: { signal?: AbortSignal } = {}): Promise<SlidePlanInfo> {
  const slideMpp = source.mpp;
  if (slideMpp === null) {
    throw new SlideError(source.name, 'no µm per pixel in the file and none in the manifest: add an mpp column (µm per level-0 pixel) for this slide', 'unknown-resolution');
  }
  if (grid.mpp * MPP_TOLERANCE < slideMpp) {
    throw new SlideError(source.name, `grid.mpp ${grid.mpp} µm/px is finer than the slide's ${fmt(slideMpp)} µm/px at level 0 (its finest): tiles would be upsampled; use grid.mpp ≥ ${fmt(slideMpp)} or check the slide's mpp`, 'invalid-argument');
  }
  const l0 = source.levels[0];
  const tileUm = grid.tile * grid.mpp;
  if (tileUm > l0.width * slideMpp || tileUm > l0.height * slideMpp) {
    throw new SlideError(source.name, `a ${grid.tile} px tile at ${grid.mpp} µm/px (${fmt(tileUm)} µm) is larger than the slide (${fmt(l0.width * slideMpp)} x ${fmt(l0.height * slideMpp)} µm at ${fmt(slideMpp)} µm/px)`, 'invalid-argument');
  }
  const { grid: plan, mask } = await planSlide(source, { ...planOptions(grid), signal: options.signal });
  if (plan.tiles.length === 0) throw new SlideError(source.name, `no tissue tiles found (is the slide blank? ${Math.round(mask.fraction * 100)}% tissue in the mask, none of ${plan.cols * plan.rows} tiles reaches grid.minTissue ${grid.minTissue})`, 'invalid-argument');
  const level = source.levels[plan.level];
  return { grid: plan, width: l0.width, height: l0.height, slideMpp, mppSource: source.mppSource ?? 'user', levelMpp: slideMpp * level.downsample, sampleStride: mask.sampleStride ?? 1 };
}

const fmt = (v: number) => String(Math.round(v * 10000) / 10000);

export interface CohortEntry {
  row: ManifestRow;
  /** The slide file's URL (file: for local files); absent when the row's path could not be resolved. */
  location?: string;
  plan?: SlidePlanInfo;
  /** Why this slide is not used, in words (without the slide id). */
  error?: string;
}

export interface Cohort {
  /** The manifest's rows that parsed (after `subset`), in manifest order, each planned or with its error. */
  entries: CohortEntry[];
  /** Problems with the manifest itself, one line each ("manifest.csv, line 4, label: must be ..."). */
  issues: string[];
}

export interface CohortOptions {
  grid: GridSettings;
  /** Opens a slide at a resolved location; `mpp` is the manifest's, when the row gives one. */
  open: (location: string, options: { mpp?: number; signal?: AbortSignal }) => Promise<SlideSource>;
  /** Keep this many slides, stratified by label and split (0: all). */
  subset?: number;
  signal?: AbortSignal;
  /** Slides opened and planned at once (default 4). */
  concurrency?: number;
  onProgress?: (done: number, total: number, slide: string) => void;
}

/**
 * Loads a cohort from a manifest's text and the manifest's own URL (http(s): or file:): rows are
 * parsed and validated (line numbers in `issues`), every path resolved against the manifest, and
 * every slide opened, checked and planned. Never throws for a bad row or slide; throws only when
 * aborted.
 */
export async function loadCohort(manifestText: string, manifestUrl: string, options: CohortOptions): Promise<Cohort> {
  const name = decodeURIComponent(new URL(manifestUrl).pathname.replace(/^.*\//, '')) || manifestUrl;
  const parsed = parseManifest(manifestText);
  const issues = formatIssues(parsed.errors).map((s) => `${name}, ${s}`);
  if (parsed.rows.length === 0 && issues.length === 0) issues.push(`${name}: no slides listed`);
  const entries: CohortEntry[] = stratifiedSubset(parsed.rows, options.subset ?? 0).map((row) => ({ row }));
  let next = 0, done = 0;
  const worker = async () => {
    while (next < entries.length) {
      const entry = entries[next++];
      const { row } = entry;
      try {
        if (!row.path) throw new Error('the manifest gives no path for this slide (line ' + row.line + ')');
        entry.location = resolveSlideLocation(manifestUrl, row.path);
        const source = await options.open(entry.location, { ...(row.mpp !== undefined ? { mpp: row.mpp } : {}), signal: options.signal });
        try {
          entry.plan = await planCohortSlide(source, options.grid, { signal: options.signal });
        } finally {
          await source.close();
        }
      } catch (e) {
        if (options.signal?.aborted) throw asSlideError(e, row.slide, 'loading');
        entry.error = e instanceof SlideError ? e.reason : (e as Error).message;
      }
      options.onProgress?.(++done, entries.length, row.slide);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, entries.length) }, worker));
  return { entries, issues };
}

// A user's own slides: dropped files plus a manifest CSV (slide,label,split[,path]). Each slide
// is opened with the project's slide reader and its tissue tile grid planned here; a slide that
// fails keeps its row with the reason, and the rest go on. Files become blob: URLs the rank
// workers read themselves.
import { fromBlob } from '../slide/source.ts';
import { formatIssues, parseManifest, type ManifestRow } from '../slide/manifest.ts';
import { asSlideError } from '../slide/errors.ts';
import { DEFAULT_GRID, planCohortSlide, type GridSettings } from '../slide/cohort.ts';
import { stratifiedSubset } from '../core/sampler.ts';
import { annotateSlides } from '../slide/annotations.ts';
import { entriesOf, type DataSet, type SlideInfo } from './dataset.ts';
import type { SlideTiles } from '../core/tiles.ts';

export interface DroppedFile {
  name: string;
  blob: Blob;
}

const stem = (name: string) => name.replace(/^.*[\\/]/, '').replace(/\.(ome\.)?(tiff?|svs|ndpi|scn|bif)$/i, '');
const base = (name: string) => name.replace(/^.*[\\/]/, '');

/** Which dropped file a manifest row means: its path's file name, else a file whose stem is the slide id. */
export function matchFile(row: Pick<ManifestRow, 'slide' | 'path'>, files: readonly DroppedFile[]): DroppedFile | undefined {
  if (row.path) {
    const byPath = files.find((f) => base(f.name) === base(row.path!));
    if (byPath) return byPath;
  }
  return files.find((f) => stem(f.name) === row.slide || base(f.name) === row.slide);
}

export interface FileLoadOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, name: string) => void;
  makeUrl?: (blob: Blob) => string;
  /** µm per pixel for files that do not say (default: refuse them, with a message); a manifest's mpp column wins. */
  mpp?: number;
  /** The tile grid (the config's `grid`). */
  grid?: GridSettings;
  /** Keep this many slides of the manifest, stratified by label and split (0: all). */
  subset?: number;
}

/** Opens dropped slides listed by a dropped manifest. Never throws for a bad slide. */
export async function loadDroppedFiles(all: readonly DroppedFile[], options: FileLoadOptions = {}): Promise<DataSet> {
  const makeUrl = options.makeUrl ?? ((b: Blob) => URL.createObjectURL(b));
  // Annotation files (lesion ground truth for the attention score): GeoJSON, and CSVs of boxes
  // (a header without label). The manifest is the CSV whose header names a label.
  const head = new Map<DroppedFile, string>();
  for (const f of all) if (/\.csv$/i.test(f.name)) head.set(f, (await f.blob.slice(0, 4096).text()).split(/\r?\n/, 1)[0].toLowerCase());
  const isAnnotation = (f: DroppedFile) => /\.(geojson|json)$/i.test(f.name) || (head.has(f) && !/(^|,)\s*label\s*(,|$)/.test(head.get(f)!));
  const annotations = all.filter(isAnnotation);
  const manifests = all.filter((f) => /\.csv$/i.test(f.name) && !isAnnotation(f));
  const files = all.filter((f) => !/\.csv$/i.test(f.name) && !isAnnotation(f));
  const issues: string[] = [];
  const slides: SlideInfo[] = [];
  let rows: ManifestRow[] = [];
  let skipped: ManifestRow[] = [];
  if (manifests.length === 0) {
    issues.push('no manifest: drop a CSV with columns slide,label,split[,path] together with the slides');
  } else {
    if (manifests.length > 1) issues.push(`several CSV files dropped; using ${manifests[0].name}`);
    const parsed = parseManifest(await manifests[0].blob.text());
    rows = stratifiedSubset(parsed.rows, options.subset ?? 0);
    skipped = parsed.rows.filter((r) => !rows.includes(r));
    issues.push(...formatIssues(parsed.errors).map((s) => `${manifests[0].name}, ${s}`));
  }
  const used = new Set<DroppedFile>();
  for (const row of skipped) {
    const file = matchFile(row, files);
    if (file) used.add(file); // left out by subset, not a stray file
  }
  const tiles: SlideTiles[] = [];
  let done = 0;
  for (const row of rows) {
    const file = matchFile(row, files);
    const info: SlideInfo = { id: row.slide, label: row.label, split: row.split, tissueTiles: 0 };
    slides.push(info);
    if (!file) {
      info.error = `no dropped file for this slide (expected ${row.path ? base(row.path) : `${row.slide}.tif(f)/.svs`})`;
      continue;
    }
    used.add(file);
    options.onProgress?.(done++, rows.length, file.name);
    try {
      const mpp = row.mpp ?? options.mpp;
      const source = await fromBlob(file.blob, { name: file.name, signal: options.signal, ...(mpp ? { mpp } : {}) });
      try {
        const plan = await planCohortSlide(source, options.grid ?? DEFAULT_GRID, { signal: options.signal });
        const { grid } = plan;
        const url = makeUrl(file.blob);
        Object.assign(info, {
          tissueTiles: grid.tiles.length,
          url,
          blob: file.blob,
          width: plan.width,
          height: plan.height,
          mpp: plan.slideMpp,
          mppSource: plan.mppSource,
          level: grid.level,
          levelMpp: plan.levelMpp,
          resample: grid.resample,
          grid: { cols: grid.cols, rows: grid.rows, tile0: grid.tile0, rects: grid.tiles.flatMap((t) => [t.x, t.y, t.w, t.h]) },
        });
        tiles.push({ id: row.slide, source: file.blob, grid });
      } finally {
        await source.close();
      }
    } catch (e) {
      if (options.signal?.aborted) throw e;
      info.error = asSlideError(e, file.name, 'opening').reason;
    }
  }
  if (annotations.length) {
    const readable = slides.filter((s) => s.grid).map((s) => ({ id: s.id, rects: s.grid!.rects }));
    const texts = await Promise.all(annotations.map(async (f) => ({ name: f.name, text: await f.blob.text() })));
    const { lesions, issues: problems } = annotateSlides(readable, texts);
    for (const s of slides) if (lesions.has(s.id)) s.lesionTiles = lesions.get(s.id);
    issues.push(...problems);
  }
  for (const f of files) {
    if (!used.has(f)) slides.push({ id: stem(f.name), label: null, split: null, tissueTiles: 0, error: `${f.name} is not in the manifest` });
  }
  options.onProgress?.(rows.length, rows.length, '');
  return {
    name: manifests[0]?.name ?? 'dropped files',
    source: { kind: 'files', names: all.map((f) => f.name) },
    slides,
    entries: entriesOf(slides),
    tileSpec: { kind: 'slides', slides: tiles },
    issues,
  };
}

// Lesion ground truth for a user's own slides: an annotation file per slide, read into the set of
// tissue tiles that hold a lesion (what the attention score compares attention with). Two formats:
//  - GeoJSON as QuPath exports it ("Export objects as GeoJSON"): a FeatureCollection, a bare array
//    of Features, or one Feature; Polygon and MultiPolygon geometries in level-0 pixel coordinates
//    (first ring the outline, further rings holes); other geometries (points, lines) are skipped
//    and counted. An optional class filter keeps features whose QuPath classification name matches.
//  - CSV of boxes: a header with x,y,w,h (or x,y,width,height, or x0,y0,x1,y1), level-0 pixels;
//    an optional `slide` column keeps only the rows of one slide.
// Pure: text in, shapes and tile indices out; errors name the file, line or feature and the reason.

/** A polygon with holes: rings of [x, y] level-0 pixel points; rings[0] the outline. */
export interface Polygon {
  kind: 'polygon';
  rings: [number, number][][];
}

/** An axis-aligned box in level-0 pixels. */
export interface Box {
  kind: 'box';
  x: number;
  y: number;
  w: number;
  h: number;
}

export type Shape = Polygon | Box;

export interface Annotations {
  shapes: Shape[];
  /** Features or rows left out, with why (non-polygon geometry, another class, another slide). */
  skipped: string[];
}

export class AnnotationError extends Error {
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'AnnotationError';
  }
}

type Json = Record<string, unknown>;

function classOf(props: unknown): string | null {
  if (!props || typeof props !== 'object') return null;
  const p = props as Json;
  const c = p.classification;
  if (c && typeof c === 'object' && typeof (c as Json).name === 'string') return (c as Json).name as string;
  if (typeof p.name === 'string') return p.name;
  return null;
}

function ringOf(file: string, where: string, ring: unknown): [number, number][] {
  if (!Array.isArray(ring) || ring.length < 3) throw new AnnotationError(file, `${where}: a ring needs at least 3 points`);
  return ring.map((pt, i) => {
    if (!Array.isArray(pt) || pt.length < 2 || !pt.slice(0, 2).every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new AnnotationError(file, `${where}: point ${i} is not [x, y] numbers`);
    }
    return [pt[0] as number, pt[1] as number];
  });
}

/**
 * GeoJSON (QuPath's export) -> polygons. `classes`: keep only features whose classification name
 * is one of these (case-insensitive); absent: every polygon.
 */
export function parseGeoJson(text: string, file: string, classes?: readonly string[]): Annotations {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new AnnotationError(file, `not JSON (${(e as Error).message})`);
  }
  const features: unknown[] = Array.isArray(doc)
    ? doc
    : doc && typeof doc === 'object' && (doc as Json).type === 'FeatureCollection' && Array.isArray((doc as Json).features)
      ? ((doc as Json).features as unknown[])
      : doc && typeof doc === 'object' && (doc as Json).type === 'Feature'
        ? [doc]
        : (() => {
            throw new AnnotationError(file, 'not GeoJSON: expected a FeatureCollection, a Feature or an array of Features');
          })();
  const wanted = classes?.map((c) => c.toLowerCase());
  const shapes: Shape[] = [];
  const skipped: string[] = [];
  features.forEach((f, i) => {
    const where = `feature ${i}`;
    if (!f || typeof f !== 'object' || (f as Json).type !== 'Feature') throw new AnnotationError(file, `${where} is not a GeoJSON Feature`);
    const g = (f as Json).geometry as Json | null;
    const cls = classOf((f as Json).properties);
    if (wanted && !(cls && wanted.includes(cls.toLowerCase()))) return void skipped.push(`${where}: class ${cls ?? '(none)'}`);
    if (!g || typeof g !== 'object') return void skipped.push(`${where}: no geometry`);
    if (g.type === 'Polygon') shapes.push({ kind: 'polygon', rings: (g.coordinates as unknown[]).map((r, j) => ringOf(file, `${where} ring ${j}`, r)) });
    else if (g.type === 'MultiPolygon') {
      (g.coordinates as unknown[][]).forEach((poly, k) => shapes.push({ kind: 'polygon', rings: poly.map((r, j) => ringOf(file, `${where} polygon ${k} ring ${j}`, r)) }));
    } else skipped.push(`${where}: ${String(g.type)} geometry`);
  });
  return { shapes, skipped };
}

/** CSV of boxes -> boxes. `slide`: keep only rows whose slide column equals it (when the CSV has one). */
export function parseBoxCsv(text: string, file: string, slide?: string): Annotations {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (!lines.length) throw new AnnotationError(file, 'empty CSV');
  const header = lines[0].split(',').map((h) => h.trim().toLowerCase());
  const col = (...names: string[]) => names.map((n) => header.indexOf(n)).find((i) => i >= 0) ?? -1;
  const [x, y, w, h, x1, y1, s] = [col('x', 'x0', 'left'), col('y', 'y0', 'top'), col('w', 'width'), col('h', 'height'), col('x1', 'right'), col('y1', 'bottom'), col('slide')];
  const sized = w >= 0 && h >= 0;
  if (x < 0 || y < 0 || !(sized || (x1 >= 0 && y1 >= 0))) throw new AnnotationError(file, `header must name x,y,w,h (or width,height, or x0,y0,x1,y1); got "${lines[0]}"`);
  const shapes: Shape[] = [];
  const skipped: string[] = [];
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const lineNo = i + 2;
    if (s >= 0 && slide !== undefined && cells[s] !== slide) return void skipped.push(`line ${lineNo}: slide ${cells[s]}`);
    const num = (j: number, name: string) => {
      const v = Number(cells[j]);
      if (cells[j] === undefined || cells[j] === '' || !Number.isFinite(v)) throw new AnnotationError(file, `line ${lineNo}: ${name} is not a number ("${cells[j] ?? ''}")`);
      return v;
    };
    const bx = num(x, header[x]);
    const by = num(y, header[y]);
    const bw = sized ? num(w, header[w]) : num(x1, header[x1]) - bx;
    const bh = sized ? num(h, header[h]) : num(y1, header[y1]) - by;
    if (!(bw > 0 && bh > 0)) throw new AnnotationError(file, `line ${lineNo}: the box has no area (${bw} x ${bh})`);
    shapes.push({ kind: 'box', x: bx, y: by, w: bw, h: bh });
  });
  return { shapes, skipped };
}

/** By file name: .geojson / .json as GeoJSON, .csv as boxes. */
export function parseAnnotations(text: string, file: string, options: { classes?: readonly string[]; slide?: string } = {}): Annotations {
  const lower = file.toLowerCase();
  if (lower.endsWith('.geojson') || lower.endsWith('.json')) return parseGeoJson(text, file, options.classes);
  if (lower.endsWith('.csv')) return parseBoxCsv(text, file, options.slide);
  throw new AnnotationError(file, 'unknown annotation format (use .geojson / .json from QuPath, or a .csv of boxes)');
}

/** Even-odd point in polygon over all rings (holes subtract). */
function inside(px: number, py: number, rings: [number, number][][]): boolean {
  let odd = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) odd = !odd;
    }
  }
  return odd;
}

/** Share of the rectangle [x, y, w, h] covered by a shape: exact for boxes, on a 16 x 16 grid of cell centres for polygons. */
export function coverage(rect: readonly number[], shape: Shape): number {
  const [x, y, w, h] = rect;
  if (shape.kind === 'box') {
    const ix = Math.max(0, Math.min(x + w, shape.x + shape.w) - Math.max(x, shape.x));
    const iy = Math.max(0, Math.min(y + h, shape.y + shape.h) - Math.max(y, shape.y));
    return (ix * iy) / (w * h);
  }
  const n = 16;
  let hits = 0;
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (inside(x + ((a + 0.5) * w) / n, y + ((b + 0.5) * h) / n, shape.rings)) hits++;
  return hits / (n * n);
}

/**
 * Tiles that hold a lesion: rects are the tissue tiles' level-0 [x, y, w, h] in tile-index order
 * (flattened, 4 per tile, as GridInfo.rects); a tile counts when the union of the shapes covers at
 * least `minCoverage` of it (default 0.1; the largest single-shape cover stands in for the union).
 */
export function lesionTilesOf(rects: readonly number[], shapes: readonly Shape[], minCoverage = 0.1): number[] {
  if (rects.length % 4) throw new Error(`tile rectangles: ${rects.length} numbers is not 4 per tile`);
  const out: number[] = [];
  for (let t = 0; t < rects.length / 4; t++) {
    const r = rects.slice(t * 4, t * 4 + 4);
    let best = 0;
    for (const s of shapes) {
      best = Math.max(best, coverage(r, s));
      if (best >= minCoverage) break;
    }
    if (best >= minCoverage) out.push(t);
  }
  return out;
}

/** An annotation file as the lab receives it (dropped or fetched): its name and text. */
export interface AnnotationFile {
  name: string;
  text: string;
}

/**
 * Lesion tiles per slide from annotation files named after the slides (`<slide>.geojson`,
 * `<slide>.json` or `<slide>.csv`; a CSV with a `slide` column may hold every slide: `*.csv`
 * whose name is no slide's). slides: id and the tissue tiles' level-0 rects [x, y, w, h] x T.
 * A slide a cohort CSV lists no box for has no lesion (an empty list: ground truth, not unknown).
 * Returns slide id -> tile indices for the slides that have annotations, and the problems (a file
 * that cannot be read, one that names no slide), each naming the file; the rest go on.
 */
export function annotateSlides(
  slides: readonly { id: string; rects: readonly number[] }[], files: readonly AnnotationFile[], options: { classes?: readonly string[]; minCoverage?: number } = {},
): { lesions: Map<string, number[]>; issues: string[] } {
  const lesions = new Map<string, number[]>();
  const issues: string[] = [];
  const ids = new Set(slides.map((s) => s.id));
  const shapes = new Map<string, Shape[]>();
  const add = (id: string, more: Shape[]) => shapes.set(id, [...(shapes.get(id) ?? []), ...more]);
  for (const f of files) {
    const base = f.name.replace(/^.*[\\/]/, '').replace(/\.(geojson|json|csv)$/i, '');
    try {
      if (ids.has(base)) add(base, parseAnnotations(f.text, f.name, { classes: options.classes }).shapes);
      else if (/\.csv$/i.test(f.name) && /(^|,)\s*slide\s*(,|$)/i.test(f.text.split(/\r?\n/, 1)[0])) {
        for (const id of ids) add(id, parseBoxCsv(f.text, f.name, id).shapes);
      } else issues.push(`${f.name}: names no slide of the data set (expected <slide>.geojson, <slide>.csv, or a CSV with a slide column)`);
    } catch (e) {
      issues.push((e as Error).message);
    }
  }
  for (const s of slides) {
    const sh = shapes.get(s.id);
    if (sh) lesions.set(s.id, lesionTilesOf(s.rects, sh, options.minCoverage));
  }
  return { lesions, issues };
}

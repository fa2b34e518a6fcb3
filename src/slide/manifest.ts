// Data set manifests: CSV with columns slide,label,split[,path][,mpp] (path may be a URL; mpp is
// the slide's µm per level-0 pixel, for files that do not say or say it wrong). Parsed with
// papaparse and validated with zod; every bad row is reported with its line number, the field and
// the reason, and the good rows go on. openDataset() opens the slides, reporting failures by name.
import Papa from 'papaparse';
import { z } from 'zod';
import { asSlideError } from './errors.ts';
import type { SlideSource } from './source.ts';

export type Split = 'train' | 'val';

export interface ManifestRow {
  /** Slide id, unique in the manifest. */
  slide: string;
  /** 0 negative, 1 positive. */
  label: 0 | 1;
  split: Split;
  /** File path or URL; absent when the slide is found by id (e.g. dropped files). */
  path?: string;
  /** µm per level-0 pixel given by the manifest (overrides the file's). */
  mpp?: number;
  /** Line number in the CSV (header is line 1). */
  line: number;
}

export interface ManifestIssue {
  /** Line number in the CSV (header is line 1); 0 for the file as a whole. */
  line: number;
  field: string;
  reason: string;
}

export interface Manifest {
  rows: ManifestRow[];
  errors: ManifestIssue[];
}

const LABELS: Record<string, 0 | 1> = { '0': 0, '1': 1, negative: 0, positive: 1, neg: 0, pos: 1 };
const SPLITS: Record<string, Split> = { train: 'train', training: 'train', val: 'val', valid: 'val', validation: 'val' };

const rowSchema = z.object({
  slide: z.string().trim().min(1, 'is empty'),
  label: z.string().trim().toLowerCase().refine((v) => v in LABELS, { message: 'must be 0, 1, negative or positive' }).transform((v) => LABELS[v]),
  split: z.string().trim().toLowerCase().refine((v) => v in SPLITS, { message: 'must be train or val' }).transform((v) => SPLITS[v]),
  path: z.string().trim().optional().transform((v) => (v ? v : undefined)),
  mpp: z.string().trim().optional()
    .refine((v) => !v || (Number(v) >= 0.01 && Number(v) <= 100), { message: 'must be the slide\'s µm per pixel, a number from 0.01 to 100' })
    .transform((v) => (v ? Number(v) : undefined)),
});

/** Parses manifest CSV text. Never throws for bad content: it reports issues. */
export function parseManifest(text: string): Manifest {
  const parsed = Papa.parse<Record<string, string>>(text.replace(/^\uFEFF/, ''), {
    header: true,
    skipEmptyLines: 'greedy',
    transformHeader: (h) => h.trim().toLowerCase(),
  });
  const errors: ManifestIssue[] = [];
  const fields = parsed.meta.fields ?? [];
  const missing = ['slide', 'label', 'split'].filter((f) => !fields.includes(f));
  if (missing.length) {
    errors.push({ line: 1, field: missing.join(','), reason: `missing column${missing.length > 1 ? 's' : ''} (header must have slide,label,split[,path][,mpp])` });
    return { rows: [], errors };
  }
  // Line numbers: papaparse reports data rows from 0; with skipped blank lines, count from the cursor.
  const lineOf = (() => {
    const starts: number[] = [];
    const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
    lines.forEach((l, i) => { if (i > 0 && l.trim() !== '') starts.push(i + 1); });
    return (row: number) => starts[row] ?? row + 2;
  })();
  for (const e of parsed.errors) {
    if (e.type === 'FieldMismatch' && e.code === 'TooFewFields' && typeof e.row === 'number') continue; // zod reports the missing field
    errors.push({ line: typeof e.row === 'number' ? lineOf(e.row) : 0, field: '', reason: e.message });
  }
  const rows: ManifestRow[] = [];
  const seen = new Map<string, number>();
  parsed.data.forEach((raw, i) => {
    const line = lineOf(i);
    const result = rowSchema.safeParse({ slide: raw.slide ?? '', label: raw.label ?? '', split: raw.split ?? '', path: raw.path, mpp: raw.mpp });
    if (!result.success) {
      for (const issue of result.error.issues) errors.push({ line, field: String(issue.path[0] ?? ''), reason: issue.message });
      return;
    }
    const prev = seen.get(result.data.slide);
    if (prev !== undefined) {
      errors.push({ line, field: 'slide', reason: `duplicate slide "${result.data.slide}" (first on line ${prev})` });
      return;
    }
    seen.set(result.data.slide, line);
    rows.push({ ...result.data, line });
  });
  return { rows, errors };
}

/** One line per issue: "line 4, label: must be 0, 1, negative or positive". */
export function formatIssues(issues: readonly ManifestIssue[]): string[] {
  return issues.map((i) => `line ${i.line}${i.field ? `, ${i.field}` : ''}: ${i.reason}`);
}

export interface OpenedSlide {
  row: ManifestRow;
  source: SlideSource;
}

export interface DatasetReport {
  opened: OpenedSlide[];
  /** Slides that failed to open, by name and reason; the rest go on. */
  failed: { slide: string; reason: string }[];
}

/** Opens every row's slide with `open` (path, URL or File lookup); failures are reported, not thrown. */
export async function openDataset(
  rows: readonly ManifestRow[],
  open: (row: ManifestRow, signal?: AbortSignal) => Promise<SlideSource>,
  options: { signal?: AbortSignal; concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<DatasetReport> {
  const opened: OpenedSlide[] = [];
  const failed: { slide: string; reason: string }[] = [];
  let next = 0, done = 0;
  const worker = async () => {
    while (next < rows.length) {
      const row = rows[next++];
      try {
        opened.push({ row, source: await open(row, options.signal) });
      } catch (e) {
        const err = asSlideError(e, row.path ?? row.slide, 'opening');
        if (err.code === 'aborted') throw err;
        failed.push({ slide: row.slide, reason: err.reason });
      }
      options.onProgress?.(++done, rows.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, rows.length) }, worker));
  opened.sort((a, b) => a.row.line - b.row.line);
  return { opened, failed };
}

// Dated bench records: one JSON file per measured run in bench/results/, written by `npm run bench --
// --record <series>` and `npm run bench:browser -- --record <series>` (or converted from
// bench/RESULTS.md, saying so in `source`). scripts/readme-figures.ts renders README.md's figure
// blocks from the newest record of each series, so a README figure is always one a command printed.
// (Shared by bench/ and scripts/; it lives here because bench/ already imports scripts/, and the
// top-level folders import each other in no circle.)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

export const RECORD_SCHEMA = 'slide-lab-bench-record/1';

/** A figure: a number as the command printed it (full precision), or a short label (e.g. the kernel that ran). */
export type Figure = number | string;

export interface BenchRecord {
  schema: typeof RECORD_SCHEMA;
  /** What the run measures, shared by reruns of it (e.g. 'cpu-throughput-worker'); the README cites the newest. */
  series: string;
  /** When it was measured: ISO 8601 date or date-time, UTC. */
  date: string;
  /** The git commit the run measured (HEAD then; '+dirty' when the working tree had changes). */
  commit: string;
  /** The machine, in words (CPU, cores, memory, GPU or none, runtime versions). */
  machine: string;
  /** Load on the machine during the run: the 1/5/15-minute load averages at the end, or a range. */
  load: string;
  /** The exact command, as typed. */
  command: string;
  /** 'measured with --record', or where a converted figure comes from (bench/RESULTS.md section, commit). */
  source: string;
  notes?: string;
  /** Flat figure names ('cpu.throughput.end-to-end-engine.n1.ours.tilesPerSec') to values. */
  figures: Record<string, Figure>;
  /** The bench's options, for reading the figures. */
  config?: unknown;
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?$/;
const SERIES_RE = /^[a-z0-9][a-z0-9-]*$/;

/** Throws, naming the file and the field, unless `r` is a complete record. */
export function validateRecord(r: unknown, file: string): BenchRecord {
  const bad = (why: string): never => { throw new Error(`${file}: not a bench record: ${why}`); };
  if (!r || typeof r !== 'object') bad('not a JSON object');
  const o = r as Record<string, unknown>;
  if (o.schema !== RECORD_SCHEMA) bad(`schema must be '${RECORD_SCHEMA}', got ${JSON.stringify(o.schema)}`);
  for (const f of ['series', 'date', 'commit', 'machine', 'load', 'command', 'source'] as const) {
    if (typeof o[f] !== 'string' || !(o[f] as string).trim()) bad(`'${f}' is missing or empty`);
  }
  if (!SERIES_RE.test(o.series as string)) bad(`'series' must be lower-case words joined by '-', got '${o.series}'`);
  if (!DATE_RE.test(o.date as string) || Number.isNaN(Date.parse(o.date as string))) bad(`'date' must be an ISO 8601 date (UTC), got '${o.date}'`);
  if (!o.figures || typeof o.figures !== 'object' || Array.isArray(o.figures)) bad(`'figures' is missing`);
  const figs = Object.entries(o.figures as Record<string, unknown>);
  if (!figs.length) bad(`'figures' is empty`);
  for (const [k, v] of figs) {
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) bad(`figure '${k}' must be a finite number or a string, got ${JSON.stringify(v)}`);
  }
  return o as unknown as BenchRecord;
}

/** Every record in `dir` (*.json), validated; file name = `<date>-<series>.json`. */
export function readRecords(dir: string): (BenchRecord & { file: string })[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => {
    const file = join(dir, f);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: not JSON: ${(e as Error).message}`);
    }
    return { ...validateRecord(json, file), file };
  });
}

/** The newest record of each series (by date; a later file name breaks a tie). */
export function latestBySeries(records: (BenchRecord & { file: string })[]): Map<string, BenchRecord & { file: string }> {
  const out = new Map<string, BenchRecord & { file: string }>();
  for (const r of records) {
    const cur = out.get(r.series);
    if (!cur || Date.parse(r.date) > Date.parse(cur.date) || (Date.parse(r.date) === Date.parse(cur.date) && r.file > cur.file)) out.set(r.series, r);
  }
  return out;
}

// Fields that name a row of a bench table, in the order they make its figure name.
const ROW_KEYS = ['backend', 'kernel', 'layer', 'encoder', 'mode', 'where', 'path', 'workers', 'ranks', 'prefetch', 'kernels', 'microBatch', 'k'];
const slug = (v: unknown) => String(v).toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-|-$/g, '');
const rowLabel = (row: Record<string, unknown>, i: number) => {
  // A kernel row's `path` says what ran ('tiled 64x16x16, 4 classes'): a result, not a name; a decode row's ('native', 'js') names it.
  const names = (k: string) => row[k] !== undefined && row[k] !== null && typeof row[k] !== 'object' && !(k === 'path' && /\s/.test(String(row[k])));
  const parts = ROW_KEYS.filter(names).map((k) => {
    const v = row[k];
    if (k === 'prefetch') return v ? 'prefetch-on' : 'prefetch-off';
    if (k === 'ranks') return `n${v}`;
    if (k === 'workers') return `w${v}`;
    if (k === 'microBatch') return `m${v}`;
    if (k === 'k') return `k${v}`;
    return slug(v);
  });
  return parts.length ? parts.join('.') : String(i);
};

/**
 * A bench JSON document flattened into named figures: numbers and short strings, keyed by their path,
 * where a row of a table is named by the fields that identify it (backend, layer, mode, ranks, ...),
 * e.g. `results.cpu.throughput.end-to-end-engine.n1.k16.ours.tilesPerSec`. Arrays of plain numbers become `.0`, `.1`, ...
 */
export function flattenFigures(doc: unknown, prefix = '', out: Record<string, Figure> = {}): Record<string, Figure> {
  if (typeof doc === 'number') {
    if (Number.isFinite(doc)) out[prefix] = doc;
  } else if (typeof doc === 'string') {
    if (doc.length <= 80 && prefix) out[prefix] = doc;
  } else if (typeof doc === 'boolean') {
    out[prefix] = String(doc);
  } else if (Array.isArray(doc)) {
    const seen = new Map<string, number>();
    doc.forEach((row, i) => {
      let label = row && typeof row === 'object' && !Array.isArray(row) ? rowLabel(row as Record<string, unknown>, i) : String(i);
      const n = seen.get(label) ?? 0;
      seen.set(label, n + 1);
      if (n) label = `${label}.${n}`;
      flattenFigures(row, prefix ? `${prefix}.${label}` : label, out);
    });
  } else if (doc && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) flattenFigures(v, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

/** HEAD's commit, with '+dirty' when tracked files differ from it; 'unknown' outside git. */
export function gitCommit(cwd = process.cwd()): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' }).trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/** This machine in words: CPU model, cores, memory, OS, Node. */
export function describeMachine(extra = ''): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model?.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}${extra ? `, ${extra}` : ''}`;
}

/** The 1/5/15-minute load averages now (and the 1-minute one at the start, when given), and the core count. */
export const loadNow = (atStart?: number[]) =>
  `load average ${atStart ? `${atStart[0].toFixed(2)} at the start, ` : ''}${os.loadavg().map((x) => x.toFixed(2)).join(' ')}${atStart ? ' at the end' : ''} on ${os.cpus().length} cores`;

/**
 * The command as typed, from argv: `npm run <script> -- <args>` with shell quoting where needed, the
 * environment variables in `env` that are set, and without `--record <series>` (which prints nothing).
 */
export function commandLine(script: string, argv: string[], env: string[] = []): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--record') i++;
    else if (!argv[i].startsWith('--record=')) args.push(argv[i]);
  }
  const envs = env.filter((k) => process.env[k] !== undefined).map((k) => `${k}=${q(process.env[k]!)}`);
  return [...envs, 'npm run', script, ...(args.length ? ['--', ...args.map(q)] : [])].join(' ');
}

export interface RecordInput {
  series: string;
  command: string;
  doc: unknown;
  config?: unknown;
  machine?: string;
  notes?: string;
  date?: Date;
  /** os.loadavg() when the run started. */
  loadAtStart?: number[];
}

/** The record of one run: figures flattened from the bench's JSON document `doc`. */
export function makeRecord(i: RecordInput): BenchRecord {
  if (!SERIES_RE.test(i.series)) throw new Error(`--record takes a series name (lower-case words joined by '-'), got '${i.series}'`);
  return validateRecord({
    schema: RECORD_SCHEMA,
    series: i.series,
    date: (i.date ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: gitCommit(),
    machine: i.machine ?? describeMachine(),
    load: loadNow(i.loadAtStart),
    command: i.command,
    source: 'measured with --record',
    ...(i.notes ? { notes: i.notes } : {}),
    figures: flattenFigures(i.doc),
    ...(i.config !== undefined ? { config: i.config } : {}),
  }, `record '${i.series}'`);
}

export const RESULTS_DIR = new URL('../bench/results/', import.meta.url).pathname;

/** Writes `record` as `<dir>/<YYYY-MM-DDTHHMM>-<series>.json` (never over an existing file); returns the path. */
export function writeRecord(record: BenchRecord, dir = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const stamp = record.date.slice(0, 16).replace(':', '');
  let file = join(dir, `${stamp}-${record.series}.json`);
  for (let n = 2; existsSync(file); n++) file = join(dir, `${stamp}-${record.series}-${n}.json`);
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  return file;
}

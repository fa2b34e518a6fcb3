// npm run readme:figures [-- --check] [--readme README.md] [--results bench/results]
// README.md's figure blocks (between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->`) rendered
// from the dated bench records in bench/results/ (scripts/readme-figures.records.ts): for every series a block
// cites, the newest record; every row cites the record's date, load and exact command. The layout
// (which figure goes where, in which words) is scripts/readme-figures.blocks.ts. --check changes
// nothing and exits 1, naming the first differing line, when README.md is not what this prints.
// Flow: npm run bench -- ... --record <series>  ->  bench/results/<date>-<series>.json  ->
// npm run readme:figures  ->  README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { latestBySeries, readRecords, type BenchRecord, type Figure } from './readme-figures.records.ts';
import { parseCli } from '../tools/cli.ts';
import { BLOCKS, type Block } from './readme-figures.blocks.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: npm run readme:figures -- [--check] [--readme README.md] [--results bench/results]
Renders README.md's figure blocks (<!-- figures:NAME --> ... <!-- /figures:NAME -->) from the newest
dated bench record of each series in bench/results/ (write one with npm run bench -- ... --record <series>).
--check: change nothing; exit 1 with the first stale line when README.md differs from the records.`;

export type Records = Map<string, BenchRecord>;

// A placeholder: {series:figure|format}, or {min series:glob|format} / {max ...} over the figures the
// glob (`*` = any run of characters) matches.
const PLACEHOLDER = /\{(?:(min|max) )?([a-z0-9-]+:[^|{}\s]+)(?:\|([^{}\s]+))?\}/g;

/** A figure in the given format: N decimals, eN exponential, gibN (MiB -> GiB), sN (ms -> s), mbN (bytes -> MB), `,` thousands; none: as recorded. */
export function formatFigure(v: Figure, format: string | undefined, where: string): string {
  if (format === undefined) return String(v);
  if (typeof v !== 'number') throw new Error(`${where}: format '${format}' needs a number, the figure is '${v}'`);
  if (format === ',') return Math.round(v).toLocaleString('en-US');
  const m = /^(e|gib|s|mb|)(\d)$/.exec(format);
  if (!m) throw new Error(`${where}: unknown format '${format}' (N, eN, gibN, sN, mbN or ,)`);
  const n = Number(m[2]);
  if (m[1] === 'e') return v.toExponential(n).replace(/e\+0$/, '');
  const scaled = m[1] === 'gib' ? v / 1024 : m[1] === 's' ? v / 1000 : m[1] === 'mb' ? v / 1e6 : v;
  return scaled.toFixed(n);
}

const globRe = (glob: string) => new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

/** The series a template cites, in order of first use. */
export function citedSeries(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) {
    const s = m[2].split(':')[0];
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** `template` with every placeholder replaced by its figure; throws naming the placeholder when a series or figure is missing. */
export function renderTemplate(template: string, records: Records, where = 'template'): string {
  return template.replace(PLACEHOLDER, (whole, fn: string | undefined, ref: string, format: string | undefined) => {
    const at = `${where}: ${whole}`;
    const [series, key] = [ref.slice(0, ref.indexOf(':')), ref.slice(ref.indexOf(':') + 1)];
    const rec = records.get(series);
    if (!rec) throw new Error(`${at}: no record of series '${series}' in bench/results/`);
    if (!fn) {
      if (!(key in rec.figures)) throw new Error(`${at}: the record of '${series}' (${rec.date}) has no figure '${key}'`);
      return formatFigure(rec.figures[key], format, at);
    }
    const re = globRe(key);
    const values = Object.entries(rec.figures).filter(([k]) => re.test(k)).map(([, v]) => v);
    if (!values.length || values.some((v) => typeof v !== 'number')) throw new Error(`${at}: '${key}' matches ${values.length ? 'a figure that is not a number' : 'no figure'} in the record of '${series}' (${rec.date})`);
    const nums = values as number[];
    return formatFigure(fn === 'min' ? Math.min(...nums) : Math.max(...nums), format, at);
  });
}

/** "2026-11-26, load average ~4 on 2 cores: `command`" for each series, joined. */
export function citation(series: string[], records: Records): string {
  const cites = series.map((s) => {
    const r = records.get(s);
    if (!r) throw new Error(`no record of series '${s}' in bench/results/`);
    return `${r.date.slice(0, 10)}, ${r.load}: \`${r.command.replace(/\|/g, '\\|')}\``;
  });
  return [...new Set(cites)].join('; ');
}

const cell = (s: string) => s.replace(/\n/g, ' ').trim();

/** One block's lines between its markers. */
export function renderBlock(block: Block, records: Records): string[] {
  const where = `block '${block.name}'`;
  if (block.kind === 'inline') {
    // Inline in a sentence: the record names and dates only (the records hold the commands).
    const text = renderTemplate(block.text, records, where);
    const series = citedSeries(block.text);
    if (!series.length) throw new Error(`${where} cites no record`);
    return [`${text}; ${series.length > 1 ? 'records' : 'record'} ${series.map((x) => `${x} of ${records.get(x)!.date.slice(0, 10)}`).join(', ')} in bench/results/`];
  }
  const lines = [`| ${[...block.header, block.citeHeader ?? 'measured (date, load: command)'].join(' | ')} |`, `|${'---|'.repeat(block.header.length + 1)}`];
  block.rows.forEach((row, i) => {
    const series = [...new Set(row.flatMap(citedSeries))];
    const cells = row.map((c) => cell(renderTemplate(c, records, `${where} row ${i + 1}`)));
    if (cells.length !== block.header.length) throw new Error(`${where} row ${i + 1}: ${cells.length} cells for ${block.header.length} columns`);
    if (!series.length) throw new Error(`${where} row ${i + 1} cites no record: a row of a figure block holds figures`);
    lines.push(`| ${[...cells, citation(series, records)].join(' | ')} |`);
  });
  return lines;
}

const START = (name: string) => `<!-- figures:${name} -->`;
const END = (name: string) => `<!-- /figures:${name} -->`;
const NOTE = '<!-- generated by `npm run readme:figures` from bench/results/*.json: edit those (or scripts/readme-figures.blocks.ts), not this -->';

/** The README text with every block replaced by its rendering; throws when a block's markers are missing. */
export function renderReadme(readme: string, records: Records, blocks: Block[] = BLOCKS): string {
  let out = readme;
  for (const b of blocks) {
    const s = out.indexOf(START(b.name));
    const e = out.indexOf(END(b.name));
    if (s < 0 || e < s) throw new Error(`README.md has no '${START(b.name)}' ... '${END(b.name)}' pair for block '${b.name}'`);
    const body = b.kind === 'inline' ? `${START(b.name)}${renderBlock(b, records).join('')}` : `${START(b.name)}\n${NOTE}\n${renderBlock(b, records).join('\n')}\n`;
    out = out.slice(0, s) + body + out.slice(e);
  }
  return out;
}

/** The first line that differs, as one line of text, or null when equal. */
export function firstDifference(actual: string, expected: string): string | null {
  if (actual === expected) return null;
  const a = actual.split('\n');
  const b = expected.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}: README has ${JSON.stringify(a[i] ?? '<end of file>')}, the records give ${JSON.stringify(b[i] ?? '<end of file>')}`;
  }
  return 'they differ';
}

export function loadRecords(dir = resolve(ROOT, 'bench/results')): Records {
  return latestBySeries(readRecords(dir));
}

export type { Block };

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseCli(process.argv.slice(2), {
    check: { type: 'boolean', default: false },
    readme: { type: 'string', default: resolve(ROOT, 'README.md') },
    results: { type: 'string', default: resolve(ROOT, 'bench/results') },
  }, USAGE);
  const file = values.readme!;
  try {
    const readme = readFileSync(file, 'utf8');
    const records = loadRecords(values.results);
    const next = renderReadme(readme, records);
    const diff = firstDifference(readme, next);
    if (values.check) {
      if (diff) {
        console.error(`${file} is stale (npm run readme:figures rewrites it): ${diff}`);
        process.exit(1);
      }
      console.log(`${file}: ${BLOCKS.length} figure blocks match the newest records of ${records.size} series`);
    } else if (diff) {
      writeFileSync(file, next);
      console.log(`${file}: rewrote its ${BLOCKS.length} figure blocks from ${records.size} series (first change at ${diff.split(':')[0]})`);
    } else console.log(`${file}: up to date (${BLOCKS.length} figure blocks)`);
  } catch (e) {
    console.error(`readme:figures: ${(e as Error).message}`);
    process.exit(1);
  }
}

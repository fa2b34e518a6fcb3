// README.md's figure blocks are what scripts/readme-figures.ts renders from bench/results/ (a figure
// edited by hand, or a record added without `npm run readme:figures`, fails here), and the
// rendering itself: a record becomes the expected row, an incomplete record is refused, the newest
// record of a series wins, a missing figure is named.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { citation, firstDifference, formatFigure, loadRecords, renderBlock, renderReadme, renderTemplate } from './readme-figures.ts';
import { BLOCKS, type Block } from './readme-figures.blocks.ts';
import { commandLine, flattenFigures, latestBySeries, readRecords, RECORD_SCHEMA, validateRecord, writeRecord, type BenchRecord } from './readme-figures.records.ts';

const README = new URL('../README.md', import.meta.url).pathname;
const RESULTS = new URL('../bench/results/', import.meta.url).pathname;

const record = (over: Partial<BenchRecord> = {}): BenchRecord => ({
  schema: RECORD_SCHEMA,
  series: 'cpu-demo',
  date: '2026-11-30T10:00:00Z',
  commit: 'abc1234',
  machine: '2-core test machine',
  load: 'load average 3.0 2.0 1.0 on 2 cores',
  command: 'npm run bench -- --backends cpu --only throughput',
  source: 'measured with --record',
  figures: { 'n1.tilesPerSec': 112.345, 'n2.tilesPerSec': 101.4, 'k64.peakMiB': 1536, relL2: 1.65e-7, ran: 'tiled' },
  ...over,
});
const recs = (...rs: BenchRecord[]) => new Map(rs.map((r) => [r.series, r]));

describe('README.md figure blocks', () => {
  it('equal what the generator renders from the newest records (npm run readme:figures rewrites them)', () => {
    const readme = readFileSync(README, 'utf8');
    const records = loadRecords(RESULTS);
    const rendered = renderReadme(readme, records);
    expect(firstDifference(readme, rendered)).toBeNull();
    for (const b of BLOCKS) expect(readme).toContain(`<!-- figures:${b.name} -->`);
  });

  it('every record in bench/results is complete, and every series the layout cites has one', () => {
    const all = readRecords(RESULTS);
    expect(all.length).toBeGreaterThan(0);
    const latest = latestBySeries(all);
    const cited = BLOCKS.flatMap((b) => (b.kind === 'inline' ? [b.text] : b.rows.flat())).join(' ');
    for (const m of cited.matchAll(/\{(?:min |max )?([a-z0-9-]+):/g)) expect(latest.has(m[1]), m[1]).toBe(true);
  });

  it('a figure edited by hand in the README is caught, naming the line', () => {
    const readme = readFileSync(README, 'utf8');
    const records = loadRecords(RESULTS);
    const tp = records.get('cpu-throughput-worker')!.figures['results.cpu.throughput.end-to-end-engine.n1.ours.k16.tilesPerSec'] as number;
    const shown = `N = 1: ${tp.toFixed(1)},`;
    expect(readme).toContain(shown);
    const edited = readme.replace(shown, `N = 1: ${(tp * 2).toFixed(1)},`);
    const diff = firstDifference(edited, renderReadme(edited, records));
    expect(diff).toMatch(/^line \d+: README has .*N = 1: /);
  });

  it('a newer record of a series changes the README (so adding one without regenerating fails the first test)', () => {
    const readme = readFileSync(README, 'utf8');
    const records = loadRecords(RESULTS);
    const old = records.get('cpu-throughput-worker')!;
    const key = 'results.cpu.throughput.end-to-end-engine.n1.ours.k16.tilesPerSec';
    const newer = { ...old, date: '2099-01-01T00:00:00Z', figures: { ...old.figures, [key]: (old.figures[key] as number) + 10 } };
    const latest = latestBySeries([{ ...old, file: 'a.json' }, { ...newer, file: 'b.json' }]);
    expect(latest.get('cpu-throughput-worker')!.date).toBe('2099-01-01T00:00:00Z');
    const next = renderReadme(readme, new Map([...records, ['cpu-throughput-worker', newer]]));
    expect(firstDifference(readme, next)).toMatch(/2099-01-01/);
  });
});

describe('rendering', () => {
  it('a record renders to the expected row, citing its date, load and command', () => {
    const block: Block = { name: 't', kind: 'table', header: ['what', 'figure'], rows: [['step (K = 16)', 'N = 1: {cpu-demo:n1.tilesPerSec|1}, N = 2: {cpu-demo:n2.tilesPerSec|1} tiles/s']] };
    expect(renderBlock(block, recs(record()))).toEqual([
      '| what | figure | measured (date, load: command) |',
      '|---|---|---|',
      '| step (K = 16) | N = 1: 112.3, N = 2: 101.4 tiles/s | 2026-11-30, load average 3.0 2.0 1.0 on 2 cores: `npm run bench -- --backends cpu --only throughput` |',
    ]);
  });

  it('formats: as recorded, decimals, exponential, MiB to GiB, ms to s, bytes to MB, thousands; min and max over a glob', () => {
    const r = recs(record({ figures: { a: 1.65e-7, b: 1536, c: 33121, d: 1545792, e: 1.2, f: 4.6, g: 0.89, s: 'tiled' } }));
    expect(renderTemplate('{cpu-demo:a} {cpu-demo:a|e1} {cpu-demo:b|gib2} {cpu-demo:c|s1} {cpu-demo:d|mb1} {cpu-demo:c|,} {cpu-demo:s}', r))
      .toBe('1.65e-7 1.7e-7 1.50 33.1 1.5 33,121 tiled');
    const r2 = recs(record({ figures: { 'x.tiled.a.speedup': 1.4, 'x.tiled.b.speedup': 4.6, 'x.stock.c.speedup': 1.0 } }));
    expect(renderTemplate('x{min cpu-demo:x.tiled.*.speedup} to x{max cpu-demo:x.tiled.*.speedup}', r2)).toBe('x1.4 to x4.6');
  });

  it('a record without a date or a command is refused, naming the file and the field', () => {
    const { date: _d, ...noDate } = record();
    expect(() => validateRecord(noDate, 'bench/results/x.json')).toThrow(/bench\/results\/x\.json: .*'date' is missing/);
    expect(() => validateRecord({ ...record(), command: ' ' }, 'y.json')).toThrow(/y\.json: .*'command' is missing or empty/);
    expect(() => validateRecord({ ...record(), date: 'last tuesday' }, 'z.json')).toThrow(/'date' must be an ISO 8601 date/);
    expect(() => validateRecord({ ...record(), figures: {} }, 'w.json')).toThrow(/'figures' is empty/);
    expect(() => validateRecord({ ...record(), figures: { a: Number.NaN } }, 'v.json')).toThrow(/figure 'a' must be a finite number/);
    expect(validateRecord(record(), 'ok.json').series).toBe('cpu-demo');
  });

  it('a missing series, figure or format is an error that names it, never an empty cell', () => {
    const r = recs(record());
    expect(() => renderTemplate('{cpu-other:n1.tilesPerSec}', r, 'block t')).toThrow(/block t: \{cpu-other:n1.tilesPerSec\}: no record of series 'cpu-other'/);
    expect(() => renderTemplate('{cpu-demo:n3.tilesPerSec}', r)).toThrow(/no figure 'n3.tilesPerSec'/);
    expect(() => renderTemplate('{min cpu-demo:zz.*}', r)).toThrow(/matches no figure/);
    expect(() => renderTemplate('{cpu-demo:ran|1}', r)).toThrow(/needs a number/);
    expect(() => formatFigure(1, 'q7', 'here')).toThrow(/unknown format 'q7'/);
    expect(() => renderBlock({ name: 'n', kind: 'table', header: ['what'], rows: [['no figure here']] }, r)).toThrow(/row 1 cites no record/);
  });

  it('the citation of several records drops repeats; the markers must exist', () => {
    const a = record();
    const b = record({ series: 'cpu-other', date: '2026-11-29' });
    expect(citation(['cpu-demo', 'cpu-other', 'cpu-demo'], recs(a, b))).toBe(
      '2026-11-30, load average 3.0 2.0 1.0 on 2 cores: `npm run bench -- --backends cpu --only throughput`; 2026-11-29, load average 3.0 2.0 1.0 on 2 cores: `npm run bench -- --backends cpu --only throughput`');
    const block: Block = { name: 'x', kind: 'inline', text: '{cpu-demo:n1.tilesPerSec|0} tiles/s' };
    expect(renderReadme('a <!-- figures:x -->old<!-- /figures:x --> b', recs(a), [block])).toBe('a <!-- figures:x -->112 tiles/s; record cpu-demo of 2026-11-30 in bench/results/<!-- /figures:x --> b');
    expect(() => renderReadme('no markers', recs(a), [block])).toThrow(/no '<!-- figures:x -->'/);
  });

  it('a bench JSON document flattens to figure names that say which row they are', () => {
    const doc = { results: [{ backend: 'cpu', throughput: [{ mode: 'end-to-end engine', ranks: 1, k: 16, kernels: 'ours', stepMs: 142.5, tilesPerSec: 112.3 }, { mode: 'single-graph reference', ranks: null, k: 16, kernels: 'ours', stepMs: 111 }] }] };
    expect(flattenFigures(doc)).toEqual({
      'results.cpu.backend': 'cpu',
      'results.cpu.throughput.end-to-end-engine.n1.ours.k16.mode': 'end-to-end engine',
      'results.cpu.throughput.end-to-end-engine.n1.ours.k16.ranks': 1,
      'results.cpu.throughput.end-to-end-engine.n1.ours.k16.k': 16,
      'results.cpu.throughput.end-to-end-engine.n1.ours.k16.kernels': 'ours',
      'results.cpu.throughput.end-to-end-engine.n1.ours.k16.stepMs': 142.5,
      'results.cpu.throughput.end-to-end-engine.n1.ours.k16.tilesPerSec': 112.3,
      'results.cpu.throughput.single-graph-reference.ours.k16.mode': 'single-graph reference',
      'results.cpu.throughput.single-graph-reference.ours.k16.k': 16,
      'results.cpu.throughput.single-graph-reference.ours.k16.kernels': 'ours',
      'results.cpu.throughput.single-graph-reference.ours.k16.stepMs': 111,
    });
    const kernels = flattenFigures({ kernels: [{ kernel: 'Conv2DBackpropFilter', layer: 'cnn4.conv1', path: 'tiled 64x16x16, 4 classes', speedup: 1.7 }] });
    expect(kernels['kernels.conv2dbackpropfilter.cnn4.conv1.speedup']).toBe(1.7);
    expect(flattenFigures({ decode: [{ path: 'native', mode: 'pool', workers: 2, tilesPerSec: 475.7 }] })['decode.pool.native.w2.tilesPerSec']).toBe(475.7);
    expect(commandLine('bench', ['--backends', 'cpu', '--record', 'cpu-x', '--only', 'a b'])).toBe("npm run bench -- --backends cpu --only 'a b'");
  });

  it('writeRecord never overwrites, and --check exits 1 naming the stale line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'readme-figures-'));
    const f1 = writeRecord(record(), dir);
    const f2 = writeRecord(record(), dir);
    expect(f1).not.toBe(f2);
    expect(readRecords(dir)).toHaveLength(2);
    const readme = join(dir, 'README.md');
    writeFileSync(readme, readFileSync(README, 'utf8').replace(/(<!-- figures:performance -->\n[^\n]*\n[^\n]*\n[^\n]*\n\| [^|]*\| )x/, '$1x9'));
    const r = spawnSync('npx', ['tsx', 'scripts/readme-figures.ts', '--check', '--readme', readme], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname, timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/is stale .*line \d+: README has .*x9/);
  });
});

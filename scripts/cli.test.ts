// Every command line behaves like one: --help prints the usage and exits 0; an unknown flag gets
// one line naming it, then the usage, exit 2, and no stack trace.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const CLIS: [string, string][] = [
  ['slide', 'scripts/slide.ts'],
  ['weights', 'scripts/weights.ts'],
  ['demo', 'scripts/make-demo.ts'],
  ['fixtures', 'scripts/make-fixtures.ts'],
  ['train:headless', 'scripts/train-headless.ts'],
  ['train', 'scripts/train.ts'],
  ['equivalence', 'scripts/equivalence.ts'],
  ['export:torch', 'scripts/export-torch.ts'],
  ['bench:browser', 'bench/browser.ts'],
  ['bench', 'bench/run.ts'],
  ['plateau study', 'bench/plateau.ts'],
  ['aggregator readback bench', 'bench/aggregator-readback.ts'],
  ['readme:figures', 'scripts/readme-figures.ts'],
];

const run = (file: string, ...args: string[]) => spawnSync('npx', ['tsx', file, ...args], { encoding: 'utf8', timeout: 60_000 });

describe.each(CLIS)('npm run %s', (_name, file) => {
  it('--help: the usage, exit 0', () => {
    const r = run(file, '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: /);
  });
  it('an unknown flag: one line naming it, the usage, exit 2, no stack trace', () => {
    const r = run(file, '--no-such-flag');
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/--no-such-flag/);
    expect(r.stderr).toMatch(/\nusage: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('npm run train:headless -- paper-figures', () => {
  it('a bad experiment flag: one line naming it, the usage, exit 2', () => {
    const r = run('scripts/train-headless.ts', 'paper-figures', '--repeats', '0');
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/--repeats/);
    expect(r.stderr).toMatch(/\nusage: .*paper-figures/);
    const k = run('scripts/train-headless.ts', 'paper-figures', '--ks', '4,x');
    expect(k.status).toBe(2);
    expect(k.stderr.split('\n')[0]).toMatch(/--ks/);
  });
});

describe('npm run train:headless -- --manifest', () => {
  it('a manifest that does not exist: one line naming it, the usage, exit 2', () => {
    const r = run('scripts/train-headless.ts', 'first-look', '--manifest', 'no/such/manifest.csv');
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/--manifest no\/such\/manifest\.csv: no such file/);
    expect(r.stderr).toMatch(/\nusage: .*--manifest CSV/);
  });
});

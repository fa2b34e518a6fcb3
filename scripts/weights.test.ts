// The weights command line: info on a PyTorch checkpoint, export and re-import, usage errors.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openWeightFile } from '../src/core/weights/index.ts';

const run = (...args: string[]) => spawnSync('npx', ['tsx', 'scripts/weights.ts', ...args], { encoding: 'utf8' });

describe('npm run weights', () => {
  it('info reports the detected architecture as JSON; export writes the family\'s names', async () => {
    const info = JSON.parse(execFileSync('npx', ['tsx', 'scripts/weights.ts', 'info', 'fixtures/pretrained/hf-vit.pt', '--tile-size', '32', '--json'], { encoding: 'utf8' }));
    expect(info).toMatchObject({ family: 'hf-vit', featureDim: 64, encoder: { kind: 'vit', patch: 8, dim: 64, blocks: 2, lnEps: 1e-12 } });
    expect(info.report.unused).toContain('pooler.dense.weight');
    const out = join(mkdtempSync(join(tmpdir(), 'weights-')), 'hf.safetensors');
    const r = run('export', 'fixtures/pretrained/hf-vit.pt', '--tile-size', '32', '--out', out);
    expect(r.status).toBe(0);
    const wf = await openWeightFile(new Blob([readFileSync(out)]), 'hf.safetensors');
    expect(wf.tensors.has('encoder.layer.1.attention.attention.query.weight')).toBe(true);
  });

  it('answers --help, refuses unknown flags and bad files in one line', () => {
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run weights/);
    const bad = run('info', 'x', '--bogus');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^error: Unknown option '--bogus'\nusage:/);
    const evil = run('info', 'fixtures/pretrained/evil.pt');
    expect(evil.status).toBe(1);
    expect(evil.stderr.trim()).toMatch(/^weights: evil\.pt: the pickle asks to call posix\.system/);
    expect(evil.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

// npm run train end to end on generated slides (pyramidal JPEG TIFFs at 0.5 µm/px): a few steps of
// a tiny model on a 20x grid (two ranks, slides as fs.openAsBlob file-backed Blobs) and a 10x grid
// (one rank, slides by path); the output directory is what the lab's run import reads.
import { spawn } from 'node:child_process';
import { mkdtempSync, openAsBlob, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDemo } from './make-demo.ts';
import { readImportedRun } from '../src/lab/run-import.ts';
import { parseLabHash } from '../src/lab/presets.ts';
import { parseConfig } from '../src/core/config.ts';
import { encoderSpecs } from '../src/core/models/encoder.ts';
import { packInitialValues } from '../src/core/params.ts';
import { relativeL2 } from '../src/core/metrics.ts';

const dir = mkdtempSync(join(tmpdir(), 'slide-lab-train-'));
beforeAll(async () => {
  await makeDemo(join(dir, 'slides'), { seed: 5, count: 4, minSide: 900, maxSide: 1100, lesionFraction: 0.3 });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY = 'encoder.kind=tiny-cnn&encoder.width=4&tileSize=16&microBatch=4&tiles=4&evalTiles=4&epochs=1&backend=cpu&grid.tile=64&augment.blur=0';

function train(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('npx', ['tsx', 'scripts/train.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Tissue tiles per slide, from the trainer's "slide <id>: N tissue tiles ... (level L, ...)" lines. */
const tilesOf = (stderr: string) => new Map([...stderr.matchAll(/^slide (\S+): (\d+) tissue tiles of \d+ px at [\d.]+ µm\/px \(level (\d+)/gm)].map((m) => [m[1], { n: Number(m[2]), level: Number(m[3]) }]));

let at20x: Map<string, { n: number; level: number }>;

describe('npm run train', () => {
  it('trains at 20x with two ranks reading file-backed Blobs and writes a run the lab imports', async () => {
    const out = join(dir, 'run20');
    const r = await train(`${TINY}&ranks=2&grid.mpp=0.5`, '--manifest', join(dir, 'slides/manifest.csv'), '--out', out, '--steps', '2', '--open', 'blob', '--json');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^step 1\/2 epoch 1 loss \d/m);
    expect(r.stderr).toMatch(/^validation after step 2: AUC [\d.]+ on 2 slides, [\d.]+ s$/m);
    expect(r.stderr).toMatch(/^rank 1: cpu/m);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ steps: 2, backend: ['cpu', 'cpu'], slides: { train: 2, val: 2, unusable: 0 }, aborted: false });
    expect(summary.validationMs).toHaveLength(1);
    expect(summary.validationMs[0]).toBeGreaterThan(0);
    at20x = tilesOf(r.stderr);
    expect(at20x.size).toBe(4);
    for (const { level } of at20x.values()) expect(level).toBe(0); // 64 px at 0.5 µm/px: level 0 as is

    // The lab's import of the directory: configuration, step, weights, history with the validation time.
    const files = await Promise.all(['checkpoint.safetensors', 'metrics.json'].map(async (name) => ({ name, blob: await openAsBlob(join(out, name)) })));
    const run = await readImportedRun(files);
    expect(run.hash).toBe(summary.hash);
    expect(run.step).toBe(2);
    expect(run.history.steps.map((s) => s.step)).toEqual([0, 1]);
    expect(run.history.evals).toHaveLength(1);
    expect(run.history.evals[0].wallMs).toBeCloseTo(summary.validationMs[0], 6);
    expect(run.history.evals[0].slides).toHaveLength(2);
    const cfg = parseConfig(parseLabHash(run.hash).config);
    expect(cfg.grid.mpp).toBe(0.5);
    const initial = packInitialValues(encoderSpecs(cfg.encoder, cfg.tileSize), cfg.seed);
    expect(run.encoder.length).toBe(initial.length);
    expect(relativeL2(run.encoder, initial)).toBeGreaterThan(1e-6); // two AdamW steps moved the encoder
    // model.json + weights.bin hold the same weights (the lab's tfjs export).
    const bin = new Float32Array(readFileSync(join(out, 'weights.bin')).buffer.slice(0));
    expect(bin.subarray(0, run.encoder.length)).toEqual(run.encoder);
    expect(bin.subarray(run.encoder.length)).toEqual(run.aggregator);
  }, 400_000);

  it('trains at 10x (grid.mpp=1, read from the pyramid level at 1 µm/px) with one rank reading by path', async () => {
    const out = join(dir, 'run10');
    const r = await train(`${TINY}&ranks=1&grid.mpp=1`, '--manifest', join(dir, 'slides/manifest.csv'), '--out', out, '--steps', '1', '--json');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ steps: 1, backend: ['cpu'], slides: { train: 2, val: 2, unusable: 0 } });
    expect(Number.isFinite(summary.finalLoss)).toBe(true);
    const at10x = tilesOf(r.stderr);
    expect([...at10x.keys()].sort()).toEqual([...at20x.keys()].sort());
    for (const [slide, { n, level }] of at10x) {
      expect(level).toBe(1); // the pyramid's 2x level is 1 µm/px
      const ratio = at20x.get(slide)!.n / n; // a 10x tile covers four 20x tiles
      expect(ratio).toBeGreaterThan(2);
      expect(ratio).toBeLessThan(8);
    }
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.config.grid.mpp).toBe(1);
    expect(metrics.source).toMatchObject({ runtime: 'node worker_threads', encoderRanks: 1 });
  }, 400_000);
});

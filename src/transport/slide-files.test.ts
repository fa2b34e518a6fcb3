// End to end on real files: Node worker ranks decode tiles from generated pyramidal JPEG TIFFs
// (the demo generator at a tiny size) and the engine trains on them; a missing file fails
// with its name, and the engine's other slides still work.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDemo, type DemoIndex } from '../../scripts/make-demo.ts';
import { tf } from '../core/tf.ts';
import { parseConfig } from '../core/config.ts';
import { Engine } from '../core/engine.ts';
import type { SlideEntry } from '../core/sampler.ts';
import type { SlideTiles } from '../core/tiles.ts';
import { nodeWorkerRanks, type NodeRank } from './node-worker.ts';

const out = mkdtempSync(join(tmpdir(), 'slide-lab-files-'));
let index: DemoIndex;
const spawned: NodeRank[] = [];
beforeAll(async () => {
  index = await makeDemo(out, { seed: 5, count: 4, minSide: 900, maxSide: 1100, lesionFraction: 0.1 });
  await tf.setBackend('cpu');
});
afterAll(() => {
  spawned.forEach((r) => r.terminate());
  rmSync(out, { recursive: true, force: true });
});

function dataset(): { slides: SlideEntry[]; tiles: SlideTiles[] } {
  const slides = index.slides.map((s) => ({ id: s.slide, label: s.label, split: 'train' as const, numTiles: s.grid.tiles.length }));
  const tiles = index.slides.map((s) => ({ id: s.slide, source: join(out, s.path), grid: s.grid }));
  return { slides, tiles };
}

describe('ranks reading slide files', () => {
  it('train on tiles decoded from pyramidal JPEG TIFFs in worker_threads', async () => {
    const { slides, tiles } = dataset();
    expect(slides.every((s) => s.numTiles > 0)).toBe(true);
    const ranks = nodeWorkerRanks(2);
    spawned.push(...ranks);
    const cfg = parseConfig({ seed: 5, ranks: 2, tiles: 4, tileSize: 32, microBatch: 2, backend: 'cpu', encoder: { width: 4 } });
    const engine = new Engine(cfg, slides, ranks);
    await engine.init({ kind: 'slides', slides: tiles });
    const report = await engine.trainStep();
    expect(Number.isFinite(report.loss)).toBe(true);
    expect(report.perRank.map((r) => r.tiles)).toEqual([2, 2]);
    expect(report.perRank.every((r) => (r.ms.decode ?? 0) > 0)).toBe(true);
    await engine.dispose();
  });

  it('reports a slide that cannot be read by its name', async () => {
    const { slides, tiles } = dataset();
    const broken = tiles.map((t, i) => (i === 0 ? { ...t, source: join(out, 'missing.tiff') } : t));
    const [rank] = nodeWorkerRanks(1);
    spawned.push(rank);
    const cfg = parseConfig({ seed: 5, ranks: 1, tiles: 2, tileSize: 32, backend: 'cpu', encoder: { width: 4 } });
    await rank.init({ rank: 0, ranks: 1, config: cfg, tiles: { kind: 'slides', slides: broken } });
    await expect(rank.encode({ step: 0, slideId: slides[0].id, slots: Int32Array.of(0), tileIndices: Int32Array.of(0), train: false })).rejects.toThrow(/missing\.tiff: no such file/);
    const ok = await rank.encode({ step: 0, slideId: slides[1].id, slots: Int32Array.of(0), tileIndices: Int32Array.of(0), train: false });
    expect(ok.features.length).toBe(16);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { parseConfig } from '../core/config.ts';
import { runEquivalence, TOLERANCE } from '../core/equivalence.ts';
import { Engine } from '../core/engine.ts';
import { syntheticSlides, SyntheticTiles } from '../core/tiles.ts';
import { nodeWorkerRanks, type NodeRank } from './node-worker.ts';

const slides = syntheticSlides(6, 5, 12);
const spawned: NodeRank[] = [];
function ranks(n: number): NodeRank[] {
  const r = nodeWorkerRanks(n);
  spawned.push(...r);
  return r;
}
afterAll(() => spawned.forEach((r) => r.terminate()));

describe('ranks in Node worker_threads over comlink', () => {
  it('match the single-graph reference with 2 ranks over 3 steps', async () => {
    await tf.setBackend('cpu');
    const cfg = parseConfig({ seed: 5, ranks: 2, tiles: 7, tileSize: 16, microBatch: 2, backend: 'cpu', encoder: { width: 4 } });
    const rows = await runEquivalence({ cfg, slides, ranks: ranks(2), tileSpec: { kind: 'synthetic', seed: 5, slides }, referenceTiles: new SyntheticTiles(5, slides), steps: 3 });
    for (const row of rows) {
      expect(row.lossDiff).toBeLessThan(TOLERANCE.loss);
      for (const v of [...Object.values(row.param), ...Object.values(row.grad)]) expect(v).toBeLessThan(TOLERANCE.grad);
    }
  });

  it('sum gradients in shared memory bit-identically to the star reduction, and match the reference', async () => {
    await tf.setBackend('cpu');
    const cfg = parseConfig({ seed: 5, ranks: 3, tiles: 7, tileSize: 16, microBatch: 2, backend: 'cpu', encoder: { width: 4 } });
    const run = (reduction: 'star' | 'shared') =>
      runEquivalence({ cfg, slides, ranks: ranks(3), tileSpec: { kind: 'synthetic', seed: 5, slides }, referenceTiles: new SyntheticTiles(5, slides), steps: 2, engineOptions: { reduction } });
    const shared = await run('shared');
    const star = await run('star');
    for (const [i, row] of shared.entries()) {
      expect(row.pass).toBe(true);
      expect(row.lossRanks).toBe(star[i].lossRanks);
      expect(row.grad).toEqual(star[i].grad);
      expect(row.param).toEqual(star[i].param);
    }
  });

  it('leave tensor counts unchanged across steps in every rank and in the main context', async () => {
    await tf.setBackend('cpu');
    const cfg = parseConfig({ seed: 5, ranks: 2, tiles: 6, tileSize: 16, microBatch: 4, backend: 'cpu', encoder: { width: 4 } });
    const workers = ranks(2);
    const engine = new Engine(cfg, slides, workers);
    const infos = await engine.init({ kind: 'synthetic', seed: 5, slides });
    expect(infos.map((i) => i.runtime)).toEqual(['node-worker', 'node-worker']);
    await engine.trainStep(); // warm-up: optimizer state and kernels exist after the first step
    const before = await Promise.all(workers.map((w) => w.memory()));
    const mainBefore = tf.memory().numTensors;
    const r1 = await engine.trainStep();
    const r2 = await engine.trainStep();
    const after = await Promise.all(workers.map((w) => w.memory()));
    expect(after.map((m) => m.numTensors)).toEqual(before.map((m) => m.numTensors));
    expect(tf.memory().numTensors).toBe(mainBefore);
    expect(r2.mainTensors).toBe(r1.mainTensors);
    expect(r2.replicaDrift).toBe(0);
    await engine.dispose();
  });

  it('carries a rank error across the thread with its message', async () => {
    const [w] = ranks(1);
    await expect(w.backward({ grad: new Float32Array(4) })).rejects.toThrow(/backward without a training encode/);
  });
});

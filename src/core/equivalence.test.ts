import { describe, expect, it } from 'vitest';
import { tf } from './tf.ts';
import { parseConfig, type Config } from './config.ts';
import { runEquivalence, TOLERANCE, type EquivalenceRow } from './equivalence.ts';
import { syntheticSlides, SyntheticTiles } from './tiles.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { delegateRank as delegate, type RankApi } from './protocol.ts';

const slides = syntheticSlides(6, 11, 10);

function config(over: Record<string, unknown>): Config {
  return parseConfig({ seed: 11, tiles: 8, tileSize: 16, microBatch: 4, encoder: { kind: 'tiny-cnn', width: 4 }, epochs: 2, optimizer: { lr: 1e-3, warmupEpochs: 0.5 }, ...over });
}

async function equivalence(cfg: Config, wrap: (ranks: RankApi[]) => RankApi[] = (r) => r, steps = 3): Promise<EquivalenceRow[]> {
  await tf.setBackend('cpu');
  const spec = { kind: 'synthetic' as const, seed: cfg.seed, slides };
  return runEquivalence({ cfg, slides, ranks: wrap(inProcessRanks(cfg.ranks)), tileSpec: spec, referenceTiles: new SyntheticTiles(cfg.seed, slides), steps });
}

function expectEquivalent(rows: EquivalenceRow[]): void {
  for (const row of rows) {
    expect(row.lossDiff).toBeLessThan(TOLERANCE.loss);
    for (const v of Object.values(row.param)) expect(v).toBeLessThan(TOLERANCE.param);
    for (const v of Object.values(row.grad)) expect(v).toBeLessThan(TOLERANCE.grad);
    expect(row.pass).toBe(true);
  }
}

describe('gradient equivalence: N ranks vs the single-graph reference (cpu backend, in-process)', () => {
  it.each([
    { ranks: 1, tiles: 8, microBatch: 4 },
    { ranks: 2, tiles: 8, microBatch: 4 },
    { ranks: 3, tiles: 8, microBatch: 2 }, // 3 does not divide 8; micro-batch below the share
    { ranks: 4, tiles: 10, microBatch: 1 },
  ])('N=$ranks K=$tiles micro-batch=$microBatch over 3 AdamW steps', async (over) => {
    const rows = await equivalence(config(over));
    expect(rows).toHaveLength(3);
    expectEquivalent(rows);
    // The figures must not be trivially zero: gradients really flowed and parameters moved.
    expect(rows.every((r) => Number.isFinite(r.lossRanks) && r.lossRanks > 0)).toBe(true);
  });

  it('holds for the ResNet-style encoder with GroupNorm and augmentation on', async () => {
    const rows = await equivalence(config({ ranks: 2, tiles: 6, microBatch: 2, tileSize: 16, encoder: { kind: 'resnet', width: 4, depth: 18 }, augment: { flip: true, rot90: true, blur: 0.5 } }), undefined, 2);
    expectEquivalent(rows);
  });

  it('fails when a rank\'s slice of dL/dFeatures is missing from its pseudo-loss', async () => {
    const dropRank1 = (ranks: RankApi[]): RankApi[] =>
      ranks.map((r, i) => (i !== 1 ? r : delegate(r, { backward: (req) => r.backward({ grad: new Float32Array(req.grad.length) }) })));
    const rows = await equivalence(config({ ranks: 2, tiles: 8, microBatch: 4 }), dropRank1, 1);
    expect(rows[0].pass).toBe(false);
    expect(rows[0].grad['enc.conv1.w']).toBeGreaterThan(1e-2);
  });

  it('fails when rank gradients are averaged instead of summed', async () => {
    const halve = (ranks: RankApi[]): RankApi[] =>
      ranks.map((r) => delegate(r, { backward: async (req) => { const out = await r.backward(req); out.grads = out.grads.map((g) => g / ranks.length); return out; } }));
    const rows = await equivalence(config({ ranks: 2, tiles: 8, microBatch: 4 }), halve, 1);
    expect(rows[0].grad['enc.conv1.w']).toBeGreaterThan(0.1);
  });
});

import { describe, expect, it } from 'vitest';
import { tf } from './tf.ts';
import { attentionDim, featureDim, parseConfig, type Config } from './config.ts';
import { EVERY_PARAM_TOLERANCE, LOSS_INVARIANT_PARAMS, runEquivalence, TOLERANCE, type EquivalenceRow } from './equivalence.ts';
import { encoderSpecs } from './models/encoder.ts';
import { aggregatorSpecs } from './models/aggregator.ts';
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

/**
 * The tracked layers within TOLERANCE along the two trajectories, and every parameter of encoder
 * and aggregator (weights after the step and gradients, each step from the same start) within
 * the cpu bound, with a gradient reaching each.
 */
function expectEquivalent(rows: EquivalenceRow[], cfg: Config): void {
  const names = [...encoderSpecs(cfg.encoder, cfg.tileSize), ...aggregatorSpecs(featureDim(cfg.encoder), attentionDim(cfg.aggregator))].map((s) => s.name);
  for (const row of rows) {
    expect(row.lossDiff).toBeLessThan(TOLERANCE.loss);
    for (const v of Object.values(row.param)) expect(v).toBeLessThan(TOLERANCE.param);
    for (const v of Object.values(row.grad)) expect(v).toBeLessThan(TOLERANCE.grad);
    expect(row.pass).toBe(true);
    const { every } = row;
    console.log(`N=${row.ranks} step ${row.step}: every parameter (${names.length}) worst weight ${every.worstParam.value.toExponential(2)} ${every.worstParam.name}, worst gradient ${every.worstGrad.value.toExponential(2)} ${every.worstGrad.name}`);
    expect(every.backend).toBe('cpu');
    expect(every.tolerance).toBe(EVERY_PARAM_TOLERANCE.cpu);
    expect(Object.keys(every.param).sort()).toEqual([...names].sort());
    expect(Object.keys(every.grad).sort()).toEqual([...names].sort());
    for (const name of names.filter((n) => !LOSS_INVARIANT_PARAMS.includes(n))) {
      expect(every.param[name], `weights of ${name}, step ${row.step}`).toBeLessThanOrEqual(EVERY_PARAM_TOLERANCE.cpu);
      expect(every.grad[name], `gradient of ${name}, step ${row.step}`).toBeLessThanOrEqual(EVERY_PARAM_TOLERANCE.cpu);
    }
    expect(every.pass).toBe(true);
    // Not vacuous: a gradient reached every parameter the loss depends on.
    expect(every.zeroGrad).toEqual([]);
  }
}

describe('gradient equivalence: N ranks vs the single-graph reference (cpu backend, in-process)', () => {
  it.each([
    { ranks: 1, tiles: 8, microBatch: 4 },
    { ranks: 2, tiles: 8, microBatch: 4 },
    { ranks: 3, tiles: 8, microBatch: 2 }, // 3 does not divide 8; micro-batch below the share
    { ranks: 4, tiles: 10, microBatch: 1 },
  ])('N=$ranks K=$tiles micro-batch=$microBatch over 3 AdamW steps', async (over) => {
    const cfg = config(over);
    const rows = await equivalence(cfg);
    expect(rows).toHaveLength(3);
    expectEquivalent(rows, cfg);
    // The figures must not be trivially zero: gradients really flowed and parameters moved.
    expect(rows.every((r) => Number.isFinite(r.lossRanks) && r.lossRanks > 0)).toBe(true);
  });

  it('holds for the ResNet-style encoder with GroupNorm and augmentation on', async () => {
    // 48-pixel tiles (layer 4 at 2x2): at 16 pixels layers 3 and 4 were 1x1 and GroupNorm (one
    // channel per group at width 4) of a single value is 0, so no gradient reached any encoder
    // parameter and every figure was 0; zeroGrad now says so.
    const cfg = config({ ranks: 2, tiles: 6, microBatch: 2, tileSize: 48, encoder: { kind: 'resnet', width: 4, depth: 18 }, augment: { flip: true, rot90: true, blur: 0.5 } });
    const rows = await equivalence(cfg, undefined, 2);
    expect(rows).toHaveLength(2);
    expectEquivalent(rows, cfg);
  });

  it('fails when a rank\'s slice of dL/dFeatures is missing from its pseudo-loss', async () => {
    const dropRank1 = (ranks: RankApi[]): RankApi[] =>
      ranks.map((r, i) => (i !== 1 ? r : delegate(r, { backward: (req) => r.backward({ grad: new Float32Array(req.grad.length) }) })));
    const rows = await equivalence(config({ ranks: 2, tiles: 8, microBatch: 4 }), dropRank1, 1);
    expect(rows[0].pass).toBe(false);
    expect(rows[0].grad['enc.conv1.w']).toBeGreaterThan(1e-2);
    expect(rows[0].every.pass).toBe(false);
    expect(rows[0].every.worstGrad.name).toMatch(/^enc\./); // an encoder gradient is off; the aggregator's are not
    expect(rows[0].every.worstGrad.value).toBeGreaterThan(1e-2);
    for (const [name, v] of Object.entries(rows[0].every.grad)) if (name.startsWith('agg.')) expect(v, name).toBeLessThanOrEqual(EVERY_PARAM_TOLERANCE.cpu);
  });

  it('every parameter catches an encoder update 0.1% off that the tracked layers miss', async () => {
    const slow = (ranks: RankApi[]): RankApi[] => ranks.map((r) => delegate(r, { apply: (req) => r.apply({ ...req, lr: req.lr * 0.999 }) }));
    const rows = await equivalence(config({ ranks: 2, tiles: 8, microBatch: 4 }), slow, 1);
    expect(rows[0].pass).toBe(true); // tracked layers: ~1e-6
    expect(rows[0].every.pass).toBe(false);
    expect(rows[0].every.worstParam.name).toMatch(/^enc\./);
    expect(rows[0].every.worstParam.value).toBeGreaterThan(10 * EVERY_PARAM_TOLERANCE.cpu); // a bias that starts at 0: ~1e-3
    expect(rows[0].every.worstGrad.value).toBeLessThanOrEqual(EVERY_PARAM_TOLERANCE.cpu); // the gradients were right
  });

  it('fails when rank gradients are averaged instead of summed', async () => {
    const halve = (ranks: RankApi[]): RankApi[] =>
      ranks.map((r) => delegate(r, { backward: async (req) => { const out = await r.backward(req); out.grads = out.grads.map((g) => g / ranks.length); return out; } }));
    const rows = await equivalence(config({ ranks: 2, tiles: 8, microBatch: 4 }), halve, 1);
    expect(rows[0].grad['enc.conv1.w']).toBeGreaterThan(0.1);
    expect(rows[0].every.pass).toBe(false);
    // Halved sums: every encoder gradient is off by about one half.
    for (const [name, v] of Object.entries(rows[0].every.grad)) if (name.startsWith('enc.') && v > 0) expect(v, name).toBeGreaterThan(0.1);
  });
});

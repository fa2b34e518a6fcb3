// Trainer.step's validation schedule: at each epoch's end, and every `evalEvery` steps as well;
// a validation mid-epoch reports the fraction of epochs done, so the AUC curve's x values
// (TrainPanel plots evals by epoch) never repeat. In-process ranks, cpu backend, tiny CNN.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { parseConfig } from '../core/config.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { loadSynthetic } from './dataset.ts';
import { Trainer } from './run.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('Trainer validation schedule', () => {
  it('validates every evalEvery steps and at epoch ends, with the epochs done (fractional mid-epoch) and no repeated x', async () => {
    const cfg = parseConfig({
      seed: 5, encoder: { kind: 'tiny-cnn', width: 4 }, tileSize: 16, tiles: 3, microBatch: 3, ranks: 1, epochs: 2, evalEvery: 4, evalTiles: 3,
      augment: { blur: 0 }, backend: 'cpu',
    });
    const data = loadSynthetic(8, cfg.seed, 32, 8);
    const trainer = await Trainer.create({ cfg, data, makeRanks: inProcessRanks });
    const spe = trainer.engine.sampler.stepsPerEpoch; // steps per epoch = training slides
    const validatedAfter: number[] = [];
    while (!trainer.done) {
      const { report, eval: ev } = await trainer.step();
      if (ev) validatedAfter.push(report.step + 1);
    }
    await trainer.dispose();
    const expected = Array.from({ length: trainer.total }, (_, i) => i + 1).filter((n) => n % 4 === 0 || n % spe === 0);
    // the two schedules differ here: some validations mid-epoch, some only at an epoch's end
    expect(expected.some((n) => n % spe !== 0) && expected.some((n) => n % 4 !== 0)).toBe(true);
    expect(validatedAfter).toEqual(expected);
    const evals = trainer.history.evals;
    expect(evals.map((e) => e.step)).toEqual(expected);
    expect(evals.map((e) => e.epoch)).toEqual(expected.map((n) => n / spe));
    expect(evals.filter((e) => e.step % spe === 0).map((e) => e.epoch)).toEqual([1, 2]);
    for (let i = 1; i < evals.length; i++) expect(evals[i].epoch).toBeGreaterThan(evals[i - 1].epoch);
  }, 60_000);
});

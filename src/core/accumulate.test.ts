// Gradient accumulation over slides (optimizer.accumulateSlides) and the feature norm: the N-rank
// engine against the single-graph reference, which accumulates with the same helpers; weights
// that stay put inside a group; and the norms' invariance to the features' scale.
import { describe, expect, it } from 'vitest';
import { tf } from './tf.ts';
import { parseConfig, type Config } from './config.ts';
import { EVERY_PARAM_TOLERANCE, LOSS_INVARIANT_PARAMS, runEquivalence, TOLERANCE } from './equivalence.ts';
import { appliesAfter, GradientSum } from './optim/accumulate.ts';
import { aggregatorForward, aggregatorSpecs, normalizeFeatures } from './models/aggregator.ts';
import { createParams } from './params.ts';
import { Engine } from './engine.ts';
import { syntheticSlides, SyntheticTiles } from './tiles.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { RankCrashed } from './faults.ts';
import type { RankApi } from './protocol.ts';

const slides = syntheticSlides(6, 11, 10);
const spec = { kind: 'synthetic' as const, seed: 11, slides };

function config(over: Record<string, unknown>): Config {
  return parseConfig({ seed: 11, tiles: 8, tileSize: 16, microBatch: 4, encoder: { kind: 'tiny-cnn', width: 4 }, epochs: 2, ...over, optimizer: { lr: 1e-3, warmupEpochs: 0.5, ...(over.optimizer as object) } });
}

describe('gradient accumulation helpers', () => {
  it('applies at the end of each group of A steps and at the last step', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((s) => appliesAfter(s, 3, 7))).toEqual([false, false, true, false, false, true, true]);
    expect([0, 1, 2].map((s) => appliesAfter(s, 1, 3))).toEqual([true, true, true]);
  });

  it('averages the gradients added since the last take', () => {
    const sum = new GradientSum();
    sum.add(new Map([['a', [1, 2]], ['b', [4]]]));
    sum.add(new Map([['a', [3, 6]], ['b', [0]]]));
    expect(sum.count).toBe(2);
    const m = sum.take();
    expect(Array.from(m.get('a')!)).toEqual([2, 4]);
    expect(Array.from(m.get('b')!)).toEqual([2]);
    expect(sum.count).toBe(0);
    expect(() => sum.take()).toThrow(/nothing/);
    sum.add(new Map([['a', [1, 2]]]));
    expect(() => sum.add(new Map([['a', [1]]]))).toThrow(/a: 1 values/);
  });
});

describe('gradient accumulation over slides: N ranks vs the single-graph reference (cpu, in-process)', () => {
  it.each([
    { ranks: 2, accumulateSlides: 3, featureNorm: 'none' },
    { ranks: 3, accumulateSlides: 2, featureNorm: 'layer' },
  ])('N=$ranks, $accumulateSlides slides per update, featureNorm $featureNorm, 4 steps', async ({ ranks, accumulateSlides, featureNorm }) => {
    await tf.setBackend('cpu');
    const cfg = config({ ranks, featureNorm, optimizer: { accumulateSlides } });
    const rows = await runEquivalence({ cfg, slides, ranks: inProcessRanks(ranks), tileSpec: spec, referenceTiles: new SyntheticTiles(11, slides), steps: 4 });
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row.lossDiff).toBeLessThan(TOLERANCE.loss);
      expect(row.pass).toBe(true);
      for (const [name, v] of Object.entries(row.every.param)) if (!LOSS_INVARIANT_PARAMS.includes(name)) expect(v, `weights of ${name}, step ${row.step}`).toBeLessThanOrEqual(EVERY_PARAM_TOLERANCE.cpu);
      for (const [name, v] of Object.entries(row.every.grad)) if (!LOSS_INVARIANT_PARAMS.includes(name)) expect(v, `gradient of ${name}, step ${row.step}`).toBeLessThanOrEqual(EVERY_PARAM_TOLERANCE.cpu);
      expect(row.every.pass).toBe(true);
      console.log(`accumulate ${accumulateSlides} N=${ranks} step ${row.step}: loss diff ${row.lossDiff.toExponential(2)}, worst weight ${row.every.worstParam.value.toExponential(2)}, worst gradient ${row.every.worstGrad.value.toExponential(2)}`);
    }
  }, 60_000);

  it('keeps the weights inside a group, moves them at its end, and differs from per-slide updates', async () => {
    await tf.setBackend('cpu');
    const run = async (accumulateSlides: number) => {
      const cfg = config({ ranks: 2, optimizer: { accumulateSlides } });
      const engine = new Engine(cfg, slides, inProcessRanks(2));
      await engine.init(spec);
      const w = [await engine.encoderWeights()];
      const a = [await engine.aggregatorWeights()];
      for (let i = 0; i < 3; i++) {
        await engine.trainStep();
        w.push(await engine.encoderWeights());
        a.push(await engine.aggregatorWeights());
      }
      await engine.dispose();
      return { w, a };
    };
    const acc = await run(3);
    const plain = await run(1);
    const same = (x: Float32Array, y: Float32Array) => x.every((v, i) => v === y[i]);
    expect(same(acc.w[1], acc.w[0]) && same(acc.w[2], acc.w[0])).toBe(true);
    expect(same(acc.a[1], acc.a[0]) && same(acc.a[2], acc.a[0])).toBe(true);
    expect(same(acc.w[3], acc.w[0])).toBe(false);
    expect(same(acc.a[3], acc.a[0])).toBe(false);
    expect(same(plain.w[1], plain.w[0])).toBe(false); // per-slide updates move at once
    expect(same(acc.w[3], plain.w[3])).toBe(false);
  }, 60_000);
});

describe('gradient accumulation and a step abandoned by a rank fault', () => {
  it('a retried step does not add its slide to the open group twice: the run equals an uninterrupted one', async () => {
    await tf.setBackend('cpu');
    const run = async (faultAtBackward: number | null) => {
      const cfg = config({ ranks: 2, optimizer: { accumulateSlides: 2 } });
      let backwards = 0;
      const ranks = inProcessRanks(2).map((r, i): RankApi =>
        i !== 1
          ? r
          : new Proxy(r, {
              get(target, prop, receiver) {
                const v = Reflect.get(target, prop, receiver);
                if (prop !== 'backward' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
                return (...args: unknown[]) => (backwards++ === faultAtBackward ? Promise.reject(new RankCrashed(1, 'backward', 'test: killed')) : v.apply(target, args));
              },
            }),
      );
      const engine = new Engine(cfg, slides, ranks);
      await engine.init(spec);
      let faults = 0;
      for (let step = 0; step < 4; ) {
        try {
          await engine.trainStep();
          step++;
        } catch (e) {
          expect(e).toBeInstanceOf(RankCrashed); // the in-process rank lives on: retry the step
          faults++;
        }
      }
      const out = { enc: await engine.encoderWeights(), agg: await engine.aggregatorWeights(), faults };
      await engine.dispose();
      return out;
    };
    const clean = await run(null);
    const faulted = await run(1); // step 0 is inside the first group, so its sums were already open
    expect(faulted.faults).toBe(1);
    expect(Array.from(faulted.enc)).toEqual(Array.from(clean.enc));
    expect(Array.from(faulted.agg)).toEqual(Array.from(clean.agg));
  }, 60_000);
});

describe('feature norm', () => {
  it('normalises each row (layer: mean 0, variance 1; l2: length sqrt(D)) and makes the aggregator blind to the features\' scale', async () => {
    await tf.setBackend('cpu');
    const h = tf.randomNormal([5, 16], 3, 7, 'float32', 1);
    const layer = normalizeFeatures(h, 'layer');
    const { mean, variance } = tf.moments(layer, -1);
    for (const v of mean.dataSync()) expect(Math.abs(v)).toBeLessThan(1e-5);
    for (const v of variance.dataSync()) expect(v).toBeCloseTo(1, 3);
    const l2 = normalizeFeatures(h, 'l2');
    for (const v of l2.square().sum(-1).sqrt().dataSync()) expect(v).toBeCloseTo(4, 4);
    expect(normalizeFeatures(h, 'none')).toBe(h);
    const p = createParams(aggregatorSpecs(16, 256), 3);
    for (const norm of ['layer', 'l2'] as const) {
      const a = aggregatorForward(p, h, null, norm).logits.dataSync();
      const b = aggregatorForward(p, h.mul(50), null, norm).logits.dataSync();
      for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 4);
    }
    const a = aggregatorForward(p, h, null).logits.dataSync();
    const b = aggregatorForward(p, h.mul(50), null).logits.dataSync();
    expect(Math.abs(b[0] - b[1])).toBeGreaterThan(Math.abs(a[0] - a[1]) * 5); // without a norm the logits scale with h
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from './tf.ts';
import { parseConfig, attentionDim } from './config.ts';
import { Engine, ReplicaDriftError } from './engine.ts';
import { aggregatorGradients, aggregatorSpecs, weightedCrossEntropy, aggregatorForward } from './models/aggregator.ts';
import { createParams, disposeParams } from './params.ts';
import { syntheticSlides } from './tiles.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { delegateRank, type RankApi } from './protocol.ts';
import type { PhaseEvent } from './report.ts';
import { mean } from './stats.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const slides = syntheticSlides(8, 21, 12);
const spec = { kind: 'synthetic' as const, seed: 21, slides };
const small = (over: Record<string, unknown> = {}) =>
  parseConfig({ seed: 21, ranks: 2, tiles: 6, tileSize: 16, microBatch: 3, backend: 'cpu', encoder: { width: 4 }, ...over });

describe('aggregator', () => {
  it('returns dL/dFeatures that match central finite differences', () => {
    const d = 6;
    const specs = aggregatorSpecs(d, attentionDim('small'));
    const p = createParams(specs, 4);
    const h = tf.randomNormal([5, d], 0, 1, 'float32', 9);
    const out = aggregatorGradients(p, specs, h, 1, 0.7, null);
    const analytic = out.featureGrad.arraySync() as number[][];
    const lossAt = (x: tf.Tensor) => tf.tidy(() => weightedCrossEntropy(aggregatorForward(p, x, null).logits, 1, 0.7).dataSync()[0]);
    const base = h.arraySync() as number[][];
    const eps = 1e-2;
    let checked = 0;
    for (const [i, j] of [[0, 0], [1, 3], [2, 5], [4, 2], [3, 1]]) {
      const plus = base.map((r) => [...r]);
      const minus = base.map((r) => [...r]);
      plus[i][j] += eps;
      minus[i][j] -= eps;
      const numeric = (lossAt(tf.tensor2d(plus)) - lossAt(tf.tensor2d(minus))) / (2 * eps);
      expect(Math.abs(numeric - analytic[i][j])).toBeLessThan(2e-3 + 2e-2 * Math.abs(analytic[i][j]));
      checked++;
    }
    expect(checked).toBe(5);
    expect(out.scores.shape).toEqual([5]);
    tf.dispose([h, out.loss, out.logits, out.scores, out.featureGrad, ...out.grads.values()]);
    disposeParams(p);
  });
});

describe('engine (in-process ranks, cpu backend)', () => {
  it('learns: the training loss on the synthetic set falls over a few epochs', async () => {
    const cfg = small({ epochs: 4, tiles: 6, dropout: 0, augment: { flip: false, rot90: false, blur: 0 }, optimizer: { lr: 3e-3, weightDecay: 0, weightDecayEnd: 0 } });
    const engine = new Engine(cfg, slides, inProcessRanks(2));
    await engine.init(spec);
    const losses: number[] = [];
    for (let i = 0; i < engine.totalSteps; i++) losses.push((await engine.trainStep()).loss);
    const per = engine.sampler.stepsPerEpoch;
    const first = mean(losses.slice(0, per));
    const last = mean(losses.slice(-per));
    expect(last).toBeLessThan(first * 0.8);
    const evalReport = await engine.evaluate();
    expect(evalReport.slides.length).toBe(slides.filter((s) => s.split === 'val').length);
    expect(evalReport.slides[0].attention.scores.length).toBe(evalReport.slides[0].attention.tileIndices.length);
    await engine.dispose();
  });

  it('reports every phase, bytes and attention, and leaves tensor counts unchanged', async () => {
    const events: PhaseEvent[] = [];
    const engine = new Engine(small(), slides, inProcessRanks(2), { onPhase: (e) => void events.push(e) });
    await engine.init(spec);
    await engine.trainStep();
    const before = tf.memory().numTensors;
    const report = await engine.trainStep();
    expect(tf.memory().numTensors).toBe(before);
    expect(new Set(events.filter((e) => e.step === 1).map((e) => e.phase))).toEqual(new Set(['forward', 'gather', 'aggregator', 'scatter', 'recompute', 'reduce', 'optimizer']));
    expect(report.perRank.map((r) => r.tiles)).toEqual([3, 3]);
    expect(report.perRank.map((r) => r.prefetched)).toEqual([true, true]); // decoded during step 0
    for (const r of report.perRank) for (const phase of ['decode', 'forward', 'recompute', 'optimizer'] as const) expect(r.ms[phase]).toBeGreaterThanOrEqual(0);
    expect(report.bytes.gather).toBeGreaterThanOrEqual(6 * report.d * 4);
    expect(report.bytes.scatter).toBe(6 * report.d * 4);
    expect(report.attention.scores).toHaveLength(6);
    expect(report.replicaDrift).toBe(0);
    await engine.dispose();
  });

  it('trains only the aggregator with a frozen encoder, caching features', async () => {
    const cfg = small({ frozenEncoder: true, augment: { flip: false, rot90: false, blur: 0 } });
    const ranks = inProcessRanks(2);
    const engine = new Engine(cfg, slides, ranks);
    await engine.init(spec);
    const w0 = await engine.encoderWeights();
    const a0 = await engine.aggregatorWeights();
    for (let i = 0; i < 8; i++) await engine.trainStep();
    expect(Array.from(await engine.encoderWeights())).toEqual(Array.from(w0));
    expect(Array.from(await engine.aggregatorWeights())).not.toEqual(Array.from(a0));
    await engine.dispose();
  });

  it('resumes from weights, optimizer state and step exactly where it stopped', async () => {
    const a = new Engine(small(), slides, inProcessRanks(2));
    await a.init(spec);
    for (let i = 0; i < 3; i++) await a.trainStep();
    const saved = { step: a.step, agg: await a.aggregatorWeights(), enc: await a.encoderWeights(), opt: await a.optimizerState() };
    const b = new Engine(small(), slides, inProcessRanks(2));
    await b.init(spec);
    b.setAggregatorWeights(saved.agg);
    await b.setEncoderWeights(saved.enc);
    await b.setOptimizerState(saved.opt);
    b.step = saved.step;
    const [ra, rb] = [await a.trainStep(), await b.trainStep()];
    expect(rb.loss).toBe(ra.loss);
    expect(Array.from(await b.encoderWeights())).toEqual(Array.from(await a.encoderWeights()));
    expect(Array.from(await b.aggregatorWeights())).toEqual(Array.from(await a.aggregatorWeights()));
    await a.dispose();
    await b.dispose();
  });

  it('fails loudly when replicas drift apart', async () => {
    const ranks: RankApi[] = inProcessRanks(2);
    const r1 = ranks[1];
    const tampered = delegateRank(r1, { apply: (req) => r1.apply({ ...req, grads: req.grads.map((g, i) => g + (i % 7) * 1e-3) }) });
    const engine = new Engine(small(), slides, [ranks[0], tampered]);
    await engine.init(spec);
    await expect(engine.trainStep()).rejects.toThrow(ReplicaDriftError);
    await engine.dispose();
  });

  it('stops at an aborted signal', async () => {
    const engine = new Engine(small(), slides, inProcessRanks(2));
    await engine.init(spec);
    const ctl = new AbortController();
    ctl.abort(new Error('stopped by the user'));
    await expect(engine.trainStep(ctl.signal)).rejects.toThrow('stopped by the user');
    expect(engine.step).toBe(0);
    await engine.dispose();
  });
});

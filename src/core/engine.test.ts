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
import { RankCrashed } from './faults.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const slides = syntheticSlides(8, 21, 12);
const spec = { kind: 'synthetic' as const, seed: 21, slides };
/** How many values differ (bitwise equality, cheap to report when it fails); -1 when the lengths differ. */
const differing = (a: Float32Array, b: Float32Array) => (a.length !== b.length ? -1 : a.reduce((n, x, i) => n + (Object.is(x, b[i]) ? 0 : 1), 0));
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

  it.each(['backward', 'apply'] as const)('a rank fault in %s (no replica applied) leaves the aggregator exactly as before the step (weights, AdamW t and moments); the retried step gives the uninterrupted result', async (call) => {
    const FAULTED = 2; // steps 0 and 1 run, so the moments are not zero; step 2 faults once, then is retried
    /** Ranks whose `call` rejects as RankCrashed (before reaching the rank) at its nth use, on every rank: no replica applies. */
    const run = async (faultAt: number | null) => {
      let calls = 0;
      const ranks = inProcessRanks(2);
      const faulty = ranks.map((r, rank) =>
        delegateRank(r, {
          [call]: (req: never) => {
            if (rank === 0) calls++;
            return calls - 1 === faultAt ? Promise.reject(new RankCrashed(rank, call, 'test: killed')) : (r[call] as (x: never) => Promise<never>)(req);
          },
        }),
      );
      const engine = new Engine(small(), slides, faulty);
      await engine.init(spec);
      const losses: number[] = [];
      for (let s = 0; s < FAULTED; s++) losses.push((await engine.trainStep()).loss);
      let rolledBack = false;
      if (faultAt !== null) {
        const before = { agg: await engine.aggregatorWeights(), opt: (await engine.optimizerState()).aggregator };
        expect(before.opt.t).toBe(FAULTED);
        expect(before.opt.m.some((x) => x !== 0)).toBe(true);
        await expect(engine.trainStep()).rejects.toThrow(RankCrashed);
        expect(engine.step).toBe(FAULTED);
        const after = { agg: await engine.aggregatorWeights(), opt: (await engine.optimizerState()).aggregator };
        expect(differing(after.agg, before.agg)).toBe(0);
        expect(after.opt.t).toBe(before.opt.t);
        expect(differing(after.opt.m, before.opt.m)).toBe(0);
        expect(differing(after.opt.v, before.opt.v)).toBe(0);
        rolledBack = true;
      }
      losses.push((await engine.trainStep()).loss); // step 2 (the retry when it faulted)
      const out = { losses, agg: await engine.aggregatorWeights(), enc: await engine.encoderWeights(), opt: (await engine.optimizerState()).aggregator, rolledBack };
      await engine.dispose();
      return out;
    };
    const clean = await run(null);
    const faulted = await run(FAULTED);
    expect(faulted.rolledBack).toBe(true);
    expect(faulted.losses).toEqual(clean.losses);
    expect(differing(faulted.agg, clean.agg)).toBe(0);
    expect(differing(faulted.enc, clean.enc)).toBe(0);
    expect(faulted.opt.t).toBe(FAULTED + 1);
    expect(differing(faulted.opt.m, clean.opt.m)).toBe(0);
    expect(differing(faulted.opt.v, clean.opt.v)).toBe(0);
  }, 60_000);

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

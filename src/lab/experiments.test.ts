// Experiments reuse one set of rank workers (RankPool): a run on warm, reset replicas must give
// exactly what a run on fresh workers gives from the same seed. In-process ranks, cpu backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { parseConfig } from '../core/config.ts';
import type { RankApi } from '../core/protocol.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { loadSynthetic } from './dataset.ts';
import { runFrozenVsEndToEnd, runKSweep, type ExperimentOptions, type ExperimentRow } from './experiments.ts';
import { initialEncoderWeights, RankPool } from './rank-pool.ts';
import { Trainer } from './run.ts';

const cfg = parseConfig({
  seed: 11, encoder: { kind: 'tiny-cnn', width: 4 }, tileSize: 16, tiles: 6, microBatch: 3, ranks: 2, epochs: 2,
  optimizer: { lr: 0.003, minLr: 0.00003 }, augment: { blur: 0 }, backend: 'cpu',
});
const data = loadSynthetic(8, cfg.seed, 32, 8);

/** In-process ranks that count how often they are made, fully initialised and terminated. */
function counted() {
  const n = { made: 0, inits: 0, terminated: 0 };
  const makeRanks = (k: number): RankApi[] =>
    inProcessRanks(k).map((r) => {
      n.made += 1;
      const init = r.init.bind(r);
      return Object.assign(r, {
        init: (x: Parameters<RankApi['init']>[0]) => ((n.inits += 1), init(x)),
        terminate: () => void (n.terminated += 1),
      });
    });
  return { n, makeRanks };
}

/** What must not depend on the workers: everything but timings. */
const outcome = (rows: ExperimentRow[]) => rows.map((r) => ({ variant: r.variant, k: r.k, frozen: r.frozenEncoder, losses: r.losses, auc: r.auc, lo: r.aucLower, hi: r.aucUpper, final: r.finalTrainLoss }));

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('experiments on one reused set of rank workers', () => {
  it('a reset replica is a fresh one: initial weights [P] bit for bit, AdamW t = 0 with zero moments', async () => {
    const fresh = inProcessRanks(1)[0];
    await fresh.init({ rank: 0, ranks: 1, config: cfg, tiles: data.tileSpec });
    expect(Array.from(initialEncoderWeights(cfg))).toEqual(Array.from(await fresh.getWeights()));
    await fresh.dispose();

    const { n, makeRanks } = counted();
    const pool = new RankPool(makeRanks);
    const run1 = await Trainer.create({ cfg, data, makeRanks: pool.lease });
    await run1.step();
    await run1.step();
    const trained = await run1.engine.encoderWeights();
    expect(Array.from(trained)).not.toEqual(Array.from(initialEncoderWeights(cfg))); // training moved them
    expect((await run1.engine.optimizerState()).encoder!.t).toBe(2);
    await run1.dispose(); // keeps the workers
    expect(n.terminated).toBe(0);

    const run2 = await Trainer.create({ cfg: parseConfig({ ...cfg, tiles: 4 }), data, makeRanks: pool.lease });
    for (const rank of run2.ranks) {
      expect(Array.from(await rank.getWeights())).toEqual(Array.from(initialEncoderWeights(cfg)));
      const opt = (await rank.getOptimizerState())!;
      expect(opt.t).toBe(0);
      expect(opt.m.some((x) => x !== 0) || opt.v.some((x) => x !== 0)).toBe(false);
    }
    await run2.dispose();
    expect({ ...n, stats: pool.stats }).toEqual({ made: 2, inits: 2, terminated: 0, stats: { started: 2, inits: 2, resets: 2 } });
    pool.terminate();
    expect(n.terminated).toBe(2);
  }, 60_000);

  it('a K sweep on reused workers gives the rows of fresh workers per run, and starts the workers once', async () => {
    const ks = [2, 6, 4];
    const pooled = counted();
    const fresh = counted();
    const base: Omit<ExperimentOptions, 'makeRanks'> = { cfg, data, maxSteps: 3 };
    const a = await runKSweep({ ...base, makeRanks: pooled.makeRanks }, ks);
    const b = await runKSweep({ ...base, makeRanks: fresh.makeRanks, reuseRanks: false }, ks);
    console.log(JSON.stringify({ pooled: pooled.n, fresh: fresh.n, losses: a.map((r) => r.losses.map((l) => +l.toFixed(5))) }));
    expect(outcome(a)).toEqual(outcome(b));
    expect(a.map((r) => [r.k, r.steps, r.reusedRanks])).toEqual([[2, 3, false], [6, 3, true], [4, 3, true]]);
    expect(b.map((r) => r.reusedRanks)).toEqual([false, false, false]);
    for (const r of a) for (const l of r.losses) expect(Number.isFinite(l)).toBe(true);
    // One start and one full init per worker for the whole sweep; every worker ends with it.
    expect(pooled.n).toEqual({ made: 2, inits: 2, terminated: 2 });
    expect(fresh.n).toEqual({ made: 6, inits: 6, terminated: 6 });
  }, 120_000);

  it('frozen then end to end on the same workers matches fresh workers (the frozen run leaves no trace)', async () => {
    const pooled = counted();
    const fresh = counted();
    const base: Omit<ExperimentOptions, 'makeRanks'> = { cfg: parseConfig({ ...cfg, augment: { flip: false, rot90: false, blur: 0 } }), data, maxSteps: 3 };
    const a = await runFrozenVsEndToEnd({ ...base, makeRanks: pooled.makeRanks });
    const b = await runFrozenVsEndToEnd({ ...base, makeRanks: fresh.makeRanks, reuseRanks: false });
    expect(outcome(a)).toEqual(outcome(b));
    expect(a.map((r) => r.frozenEncoder)).toEqual([true, false]);
    expect(a[0].losses).not.toEqual(a[1].losses); // the encoder learns in the second run only
    expect(pooled.n).toEqual({ made: 2, inits: 2, terminated: 2 });
  }, 120_000);

  it('aborting mid-experiment rejects with an AbortError and terminates the workers', async () => {
    const pooled = counted();
    const abort = new AbortController();
    const run = runKSweep({ cfg, data, maxSteps: 3, makeRanks: pooled.makeRanks, signal: abort.signal, onStep: (_v, s) => s === 2 && abort.abort(new DOMException('cancelled', 'AbortError')) }, [2, 6]);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(pooled.n.terminated).toBe(2);
  }, 60_000);
});

// A rank worker that runs out of memory, in Node: with a heap limit on the worker
// (worker_threads resourceLimits), a rank that allocates until its V8 heap is exhausted
// (TestFault 'oom') is ended by Node with ERR_WORKER_OUT_OF_MEMORY, an `error` and `exit` event.
// The rank wrapper's crash path sees it as RankCrashed at once, restarts the rank from a healthy
// replica and retries the step: the run equals an uninterrupted one. (In Chromium a worker out of
// memory takes the whole renderer down instead: e2e/lab-faults.spec.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { parseConfig, type Config } from '../core/config.ts';
import { delegateRank, type RankApi } from '../core/protocol.ts';
import { TOLERANCE } from '../core/equivalence.ts';
import { normalizedL1 } from '../core/metrics.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { nodeWorkerRanks } from '../transport/node-worker.ts';
import { withControls, type ControlledRank } from '../transport/rank-wrapper.ts';
import { loadSynthetic } from './dataset.ts';
import { describeFault } from './recovery.ts';
import { Trainer } from './run.ts';

const base = {
  seed: 13, encoder: { kind: 'tiny-cnn', width: 4 }, tileSize: 16, tiles: 6, microBatch: 3, ranks: 2, epochs: 3,
  optimizer: { lr: 0.003, minLr: 0.00003 }, augment: { blur: 0 }, backend: 'cpu',
} as const;
const data = loadSynthetic(6, base.seed, 24, 6);
const STEPS = 3;
/** Each rank worker's old-generation heap: room for tfjs and the tiny model, little more. */
const HEAP_MB = 96;
const spawned: ControlledRank[] = [];
afterAll(() => spawned.forEach((r) => r.terminate?.()));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

async function train(cfg: Config, makeRanks: (n: number) => RankApi[]) {
  const trainer = await Trainer.create({ cfg, data, makeRanks, onFault: (n) => process.env.DEBUG_FAULTS && console.log(describeFault(n)) });
  for (let s = 0; s < STEPS; s++) await trainer.step();
  const out = { losses: trainer.history.steps.map((s) => s.loss), encoder: await trainer.engine.encoderWeights(), aggregator: await trainer.engine.aggregatorWeights(), faults: trainer.faults, replicas: await Promise.all(trainer.ranks.map((r) => r.getWeights())) };
  await trainer.dispose();
  return out;
}

describe('a rank worker that runs out of memory (worker_threads with a heap limit)', () => {
  it('is detected as RankCrashed (ERR_WORKER_OUT_OF_MEMORY), restarted from a healthy replica, and the run equals an uninterrupted one', async () => {
    const cfg = parseConfig(base);
    const reference = await train(cfg, (n) => inProcessRanks(n));
    const t0 = performance.now();
    const faulted = await train(cfg, (n) =>
      nodeWorkerRanks(n, undefined, { maxOldGenerationSizeMb: HEAP_MB }).map((r, i) => {
        spawned.push(r);
        // rank 1 allocates until its heap is exhausted in step 1's backward.
        return i === 1 ? withControls(delegateRank(r, { init: (x) => r.init({ ...x, testFault: { kind: 'oom', call: 'backward', nth: 2 } }) }), r) : r;
      }),
    );
    expect(faulted.faults).toHaveLength(1);
    const f = faulted.faults[0];
    expect(f).toMatchObject({ kind: 'crashed', rank: 1, call: 'backward', step: 1, restarted: [1], donor: 0, retried: true });
    expect(f.reason).toMatch(/ERR_WORKER_OUT_OF_MEMORY|out of memory/i);
    expect(faulted.losses).toHaveLength(STEPS);
    faulted.losses.forEach((l, i) => expect(Math.abs(l - reference.losses[i])).toBeLessThan(TOLERANCE.loss));
    expect(normalizedL1(faulted.encoder, reference.encoder)).toBeLessThan(TOLERANCE.param);
    expect(normalizedL1(faulted.aggregator, reference.aggregator)).toBeLessThan(TOLERANCE.param);
    for (const w of faulted.replicas) expect(normalizedL1(w, faulted.encoder)).toBe(0);
    console.log(`[faults] node worker out of memory (heap ${HEAP_MB} MB): ${describeFault(f)}; restored in ${(f.restoredAt - f.detectedAt).toFixed(0)} ms; faulted run ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }, 120_000);
});

// Surviving rank faults in Node (worker_threads ranks, cpu backend, tiny model): workers that die
// mid-step (an uncaught error, process.exit, termination from outside) are detected as RankCrashed
// at once (well before the call timeout), restarted from a healthy replica, and the run afterwards
// equals an uninterrupted run from the same state within the equivalence tolerance. With the
// shared-memory reduction, a rank dying inside backwardApply releases the rank waiting at the
// barrier at once (not after the barrier's 120 s timeout), and the same holds; so does a worker
// that runs out of memory under a heap limit. A WebGPU device
// destroyed mid-step is the same in Dawn when an adapter exists (skipped, saying so, when none).
import type { ResourceLimits } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { parseConfig, type Config } from '../core/config.ts';
import { delegateRank, type RankApi } from '../core/protocol.ts';
import { RankCrashed, type TestFault } from '../core/faults.ts';
import { TOLERANCE } from '../core/equivalence.ts';
import { normalizedL1 } from '../core/metrics.ts';
import type { PhaseEvent } from '../core/report.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { nodeWorkerRanks } from '../transport/node-worker.ts';
import { withControls, type ControlledRank } from '../transport/rank-wrapper.ts';
import { nodeGpu } from '../runtime/node.ts';
import { loadSynthetic } from './dataset.ts';
import { describeFault } from './recovery.ts';
import { LabSession } from './session.ts';
import { testDeps, until } from './testing/session-deps.ts';
import { Trainer, type TrainerOptions } from './run.ts';

const base = {
  seed: 13, encoder: { kind: 'tiny-cnn', width: 4 }, tileSize: 16, tiles: 6, microBatch: 3, ranks: 2, epochs: 3,
  optimizer: { lr: 0.003, minLr: 0.00003 }, augment: { blur: 0 }, backend: 'cpu',
} as const;
const data = loadSynthetic(6, base.seed, 24, 6);
const STEPS = 4;
const spawned: ControlledRank[] = [];
afterAll(() => spawned.forEach((r) => r.terminate?.()));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Node worker ranks (with `resourceLimits` on each worker, if given); rank i injects faults[i] into itself (RankInit.testFault). */
function faultyRanks(faults: (TestFault | undefined)[], resourceLimits?: ResourceLimits) {
  return (n: number): RankApi[] =>
    nodeWorkerRanks(n, undefined, resourceLimits).map((r, i) => {
      spawned.push(r);
      const fault = faults[i];
      return fault ? withControls(delegateRank(r, { init: (x) => r.init({ ...x, testFault: fault }) }), r) : r;
    });
}

async function train(cfg: Config, makeRanks: (n: number) => RankApi[], onPhase?: (t: Trainer, e: PhaseEvent) => void, steps = STEPS, reduction: TrainerOptions['reduction'] = 'star') {
  let trainer: Trainer | null = null;
  trainer = await Trainer.create({ cfg, data, makeRanks, reduction, onPhase: (e) => onPhase?.(trainer!, e), onFault: (n) => process.env.DEBUG_FAULTS && console.log(describeFault(n)) });
  const done: number[] = []; // performance.now() at each step's end
  for (let s = 0; s < steps; s++) {
    await trainer.step();
    done.push(performance.now());
    if (process.env.DEBUG_FAULTS) console.log(`step ${s} done at ${performance.now().toFixed(0)}`);
  }
  const out = { losses: trainer.history.steps.map((s) => s.loss), encoder: await trainer.engine.encoderWeights(), aggregator: await trainer.engine.aggregatorWeights(), faults: trainer.faults, done, checksums: await Promise.all(trainer.ranks.map((r) => r.getWeights())) };
  await trainer.dispose();
  return out;
}

/** The faulted run equals the uninterrupted one: losses step by step, encoder and aggregator weights. */
function expectSameRun(a: Awaited<ReturnType<typeof train>>, b: Awaited<ReturnType<typeof train>>, steps = STEPS) {
  expect(a.losses).toHaveLength(steps);
  a.losses.forEach((l, i) => expect(Math.abs(l - b.losses[i])).toBeLessThan(TOLERANCE.loss));
  expect(normalizedL1(a.encoder, b.encoder)).toBeLessThan(TOLERANCE.param);
  expect(normalizedL1(a.aggregator, b.aggregator)).toBeLessThan(TOLERANCE.param);
  // every replica, the restarted ones included, holds the same weights
  for (const w of a.checksums) expect(normalizedL1(w, a.encoder)).toBe(0);
}

describe('a rank worker that dies mid-step', () => {
  it('is detected as RankCrashed, restarted from a healthy replica, and the run equals an uninterrupted one', async () => {
    const cfg = parseConfig(base);
    const reference = await train(cfg, (n) => inProcessRanks(n));
    let killedAt = 0;
    const faulted = await train(
      cfg,
      // rank 0: an uncaught error in its worker during step 1's encode (the step is abandoned and retried);
      // rank 1: process.exit in step 1's apply, after rank 0 applied it (the step stands, rank 1 takes rank 0's state).
      faultyRanks([{ kind: 'throw', call: 'encode', nth: 2 }, { kind: 'exit', call: 'apply', nth: 2 }]),
      // step 3: rank 0's worker is terminated from outside while the aggregator runs.
      (t, e) => {
        if (e.step === 3 && e.phase === 'aggregator' && e.at === 'start' && !killedAt) {
          killedAt = performance.now();
          t.ranks[0].kill?.();
        }
      },
    );
    const [thrown, exited, killed] = faulted.faults;
    expect(faulted.faults).toHaveLength(3);
    expect(thrown).toMatchObject({ kind: 'crashed', rank: 0, call: 'encode', step: 1, restarted: [0], donor: 1 });
    expect(thrown.reason).toMatch(/uncaught error|test fault/);
    expect(exited).toMatchObject({ kind: 'crashed', rank: 1, call: 'apply', step: 1, restarted: [1], donor: 0 });
    expect(killed).toMatchObject({ kind: 'crashed', rank: 0, step: 3, restarted: [0], donor: 1 });
    expect(killed.reason).toMatch(/exited \(code 1\)/);
    expect(describeFault(thrown)).toMatch(/^rank 0 crashed in encode at step 1 .* restarted from rank 1's weights and optimizer state in [\d.]+ s; the step is retried$/);
    expectSameRun(faulted, reference);
    // Figures (not asserted): detection after the kill, restore, and until the retried step was done.
    console.log(
      `[faults] node worker kill: detected in ${(killed.detectedAt - killedAt).toFixed(0)} ms, restored in ${(killed.restoredAt - killed.detectedAt).toFixed(0)} ms, ` +
        `step ${killed.step} done ${(faulted.done[3] - killedAt).toFixed(0)} ms after the kill; throw: restored in ${(thrown.restoredAt - thrown.detectedAt).toFixed(0)} ms; exit: restored in ${(exited.restoredAt - exited.detectedAt).toFixed(0)} ms`,
    );
  }, 240_000);
});

describe('a rank worker that runs out of memory (worker_threads with a heap limit)', () => {
  // Node ends a worker whose V8 heap is exhausted with ERR_WORKER_OUT_OF_MEMORY (an `error` and
  // `exit` event), and the crash path handles it like any death. (In Chromium a worker out of
  // memory takes the whole renderer down instead: e2e/lab-faults.spec.ts.)
  const HEAP_MB = 96; // each rank worker's old-generation heap: room for tfjs and the tiny model, little more
  const steps = 3;
  it('is detected as RankCrashed (ERR_WORKER_OUT_OF_MEMORY), restarted from a healthy replica, and the run equals an uninterrupted one', async () => {
    const cfg = parseConfig(base);
    const reference = await train(cfg, (n) => inProcessRanks(n), undefined, steps);
    const t0 = performance.now();
    // rank 1 allocates until its heap is exhausted in step 1's backward.
    const faulted = await train(cfg, faultyRanks([undefined, { kind: 'oom', call: 'backward', nth: 2 }], { maxOldGenerationSizeMb: HEAP_MB }), undefined, steps);
    expect(faulted.faults).toHaveLength(1);
    const f = faulted.faults[0];
    expect(f).toMatchObject({ kind: 'crashed', rank: 1, call: 'backward', step: 1, restarted: [1], donor: 0, retried: true });
    expect(f.reason).toMatch(/ERR_WORKER_OUT_OF_MEMORY|out of memory/i);
    expectSameRun(faulted, reference, steps);
    console.log(`[faults] node worker out of memory (heap ${HEAP_MB} MB): ${describeFault(f)}; restored in ${(f.restoredAt - f.detectedAt).toFixed(0)} ms; faulted run ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }, 120_000);
});

describe('a rank worker that dies during the shared-memory reduction', () => {
  it('releases the ranks waiting at the barrier at once (not after its 120 s timeout), is restarted from a healthy replica, and the run equals an uninterrupted one', async () => {
    const cfg = parseConfig(base);
    const reference = await train(cfg, (n) => inProcessRanks(n)); // the star reduction: the same sums, bit for bit
    /** Every backwardApply: which rank, when it was sent and settled, and how it failed. */
    const calls: { rank: number; sentAt: number; settledAt: number; error?: unknown }[] = [];
    let sync: Int32Array | null = null; // armed at step 3: rank 0 is killed once rank 1 waits at the barrier
    let killedAt = 0;
    const faulted = await train(
      cfg,
      (n) =>
        // rank 1: process.exit as its step-1 backwardApply starts (rank 0 computes its share and waits for rank 1's);
        // rank 0 at step 3: killed from outside while rank 1 waits at the barrier for its share.
        faultyRanks([undefined, { kind: 'exit', call: 'backwardApply', nth: 2 }])(n).map((r, rank) =>
          withControls(
            delegateRank(r, {
              backwardApply: async (req) => {
                if (rank === 0 && sync) {
                  const s = sync;
                  sync = null;
                  await until(() => Atomics.load(s, 0) === 1, 60_000); // rank 1 arrived and blocks in Atomics.wait
                  killedAt = performance.now();
                  (r as ControlledRank).kill?.();
                }
                const call = { rank, sentAt: performance.now(), settledAt: 0, error: undefined as unknown };
                calls.push(call);
                try {
                  return await r.backwardApply(req);
                } catch (e) {
                  call.error = e;
                  throw e;
                } finally {
                  call.settledAt = performance.now();
                }
              },
            }),
            r,
          ),
        ),
      (t, e) => {
        if (e.step === 3 && e.phase === 'aggregator' && e.at === 'end' && !killedAt) sync = new Int32Array(t.engine.sharedReduce!.sync);
      },
      STEPS,
      'shared',
    );
    expect(faulted.faults).toHaveLength(2);
    const [exited, killed] = faulted.faults;
    expect(exited).toMatchObject({ kind: 'crashed', rank: 1, call: 'backwardApply', step: 1, restarted: [1], donor: 0, retried: true });
    expect(killed).toMatchObject({ kind: 'crashed', rank: 0, call: 'backwardApply', step: 3, restarted: [0], donor: 1, retried: true });
    // The survivors' calls failed as the dead peer's fault, saying so, well before the barrier's timeout.
    const failed = calls.filter((c) => c.error);
    expect(failed.map((c) => c.rank).sort()).toEqual([0, 0, 1, 1]); // each fault: the dead rank's own call and its survivor's
    for (const c of failed) {
      expect(c.error).toBeInstanceOf(RankCrashed);
      expect(c.settledAt - c.sentAt).toBeLessThan(20_000);
    }
    const survivor = (rank: number) => failed.find((c) => c.rank === rank && /peer rank died/.test(String(c.error)))!;
    expect((survivor(0).error as RankCrashed).rank).toBe(1); // rank 0 was released because rank 1 died
    expect(String(survivor(0).error)).toMatch(/^RankCrashed: rank 1, backwardApply: the rank's worker died: seen by rank 0: a peer rank died during the shared-memory gradient reduction/);
    expect((survivor(1).error as RankCrashed).rank).toBe(0);
    expect(survivor(1).settledAt - killedAt).toBeLessThan(20_000); // released from its barrier, not after 120 s
    expect(killed.detectedAt - killedAt).toBeLessThan(20_000);
    expect(faulted.done[3] - killedAt).toBeLessThan(20_000); // restarted and retried, all within the bound
    expectSameRun(faulted, reference);
    // Figures (not asserted): from the kill to the release of the waiting rank, to the restore, and to the retried step's end.
    console.log(
      `[faults] shared reduction, node worker killed mid-reduction: waiting rank released ${(survivor(1).settledAt - killedAt).toFixed(0)} ms after the kill, ` +
        `detected ${(killed.detectedAt - killedAt).toFixed(0)} ms, restored ${(killed.restoredAt - killed.detectedAt).toFixed(0)} ms after detection, step ${killed.step} done ${(faulted.done[3] - killedAt).toFixed(0)} ms after the kill; ` +
        `exit at backwardApply: rank 0 released after ${(survivor(0).settledAt - survivor(0).sentAt).toFixed(0)} ms in its call, restored ${(exited.restoredAt - exited.detectedAt).toFixed(0)} ms after detection`,
    );
  }, 240_000);
});

const adapter = await (await nodeGpu())?.requestAdapter({ powerPreference: 'high-performance' });

describe.skipIf(!adapter)('a rank whose WebGPU device is lost mid-step (Dawn in worker_threads)', () => {
  it('fails its call as DeviceLost, is restarted on a new device from a healthy replica, and the run equals an uninterrupted one', async () => {
    const cfg = parseConfig({ ...base, backend: 'webgpu' });
    const reference = await train(parseConfig(base), (n) => inProcessRanks(n), undefined, 2); // cpu: within the webgpu equivalence bound
    const faulted = await train(cfg, faultyRanks([undefined, { kind: 'device-lost', call: 'backward', nth: 2 }]), undefined, 2);
    expect(faulted.faults).toHaveLength(1);
    expect(faulted.faults[0]).toMatchObject({ kind: 'device-lost', rank: 1, call: 'backward', step: 1, restarted: [1], donor: 0 });
    expect(faulted.faults[0].reason).toMatch(/destroyed/);
    expectSameRun(faulted, reference, 2);
    const n = faulted.faults[0];
    console.log(`[faults] node webgpu device loss: restored in ${(n.restoredAt - n.detectedAt).toFixed(0)} ms`);
  }, 240_000);
});

describe("the page's own WebGPU device lost (the aggregator's)", () => {
  it('stops the run, sets up a new main backend and goes on from the last checkpoint to the same end as an uninterrupted run', async () => {
    const hash = 'data=synthetic&encoder.width=4&tileSize=16&tiles=6&microBatch=3&ranks=2&epochs=1&optimizer.lr=0.003&augment.blur=0&backend=cpu&subset=8';
    async function run(lose: boolean) {
      let setups = 0;
      const session = new LabSession(
        testDeps({
          setupMain: async () => {
            setups += 1;
            await tf.setBackend('cpu');
            return { backend: 'cpu', adapter: null };
          },
        }),
        hash,
      );
      await session.loadDefaultData();
      const faults: string[] = [];
      session.on('fault', (f) => faults.push(f.text));
      if (process.env.DEBUG_FAULTS) session.on('state', (st) => console.log(`${lose ? 'lost' : 'plain'}: ${st} at step ${session.trainer?.engine.step} ${performance.now().toFixed(0)}`));
      let lost: Promise<void> | null = null;
      // runtime/webgpu.ts's onDeviceLost calls this in the browser (browser.ts); here the test does, after step 1.
      session.on('step', (r) => {
        if (lose && r.step === 1 && !lost) lost = session.mainDeviceLost('device lost (destroyed)');
      });
      await session.start();
      const t0 = Date.now();
      while (!(session.state === 'done' && (!lose || faults.length)) && session.state !== 'error' && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 20));
      await lost;
      const out = { state: session.state, error: session.lastError, setups, faults, losses: session.history.steps.map((s) => s.loss), encoder: await session.trainer!.engine.encoderWeights(), aggregator: await session.trainer!.engine.aggregatorWeights() };
      await session.stop();
      return out;
    }
    const plain = await run(false);
    const lost = await run(true);
    expect(lost.error).toBeNull();
    expect(lost.state).toBe('done');
    expect(lost.setups).toBe(2); // a new main backend after the loss
    expect(lost.faults).toHaveLength(1);
    expect(lost.faults[0]).toMatch(/^the page's WebGPU device was lost \(device lost \(destroyed\)\) at step \d; a new device was set up and training goes on from the checkpoint of step \d$/);
    expect(lost.losses).toEqual(plain.losses);
    expect(normalizedL1(lost.encoder, plain.encoder)).toBeLessThan(TOLERANCE.param);
    expect(normalizedL1(lost.aggregator, plain.aggregator)).toBeLessThan(TOLERANCE.param);
  }, 120_000);
});

// Rank faults in Chromium: Web Worker ranks that crash mid-step (an uncaught error in the worker,
// seen through its `error` event; a worker terminated while the aggregator runs) and a rank whose
// WebGPU device (SwiftShader here) is destroyed mid-step. Each time the run notices at once, restarts
// the rank in a fresh worker from a healthy replica, retries the step, and ends where an
// uninterrupted run (in-process ranks in the page, cpu backend) ends, within the equivalence tolerance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestPage, type TestPage } from '../tools/chromium.ts';
import { TOLERANCE } from '../src/core/equivalence.ts';

let t: TestPage;

beforeAll(async () => {
  t = await openTestPage('/e2e/pages/engine.html', 120_000);
});
afterAll(async () => {
  await t?.browser.close();
});

interface Outcome {
  losses: number[];
  reference: number[];
  encoderL1: number;
  aggregatorL1: number;
  replicasL1: number[];
  faults: { kind: string; rank: number; call: string; step: number; reason: string; restarted: number[]; donor: number; detectedAt: number; restoredAt: number; retried: boolean }[];
  text: string[];
  killedAt: number;
  doneAt: number[];
  backends: string[];
}

/**
 * Trains `steps` steps twice in the page: with 2 Web Worker ranks (rank i injects faults[i];
 * `killStep`: rank 1's worker is terminated when that step's aggregator starts), and with
 * in-process ranks on the cpu backend as the uninterrupted reference. The page's modules are
 * imported by URL (a string, so Vitest does not rewrite the imports for Node).
 */
function scenario(o: { backend: 'cpu' | 'webgpu'; steps: number; faults: unknown[]; killStep?: number }): Promise<Outcome> {
  return t.page.evaluate(`(async () => {
    const o = ${JSON.stringify(o)};
    const [{ parseConfig }, { Trainer }, { loadSynthetic }, { webWorkerRanks }, { inProcessRanks }, { delegateRank }, { withControls }, { describeFault }, { normalizedL1 }, { setupBrowserBackend }] = await Promise.all(
      ['/src/core/config.ts', '/src/lab/run.ts', '/src/lab/dataset.ts', '/src/transport/web-worker.ts', '/src/transport/in-process.ts', '/src/core/protocol.ts', '/src/transport/rank-wrapper.ts', '/src/lab/recovery.ts', '/src/core/metrics.ts', '/src/runtime/browser.ts'].map((u) => import(u)));
    await setupBrowserBackend('cpu'); // the page: aggregator and reference on the cpu backend
    const base = { seed: 13, encoder: { kind: 'tiny-cnn', width: 4 }, tileSize: 16, tiles: 6, microBatch: 3, ranks: 2, epochs: 3, optimizer: { lr: 0.003, minLr: 0.00003 }, augment: { blur: 0 } };
    const data = loadSynthetic(6, 13, 24, 6);
    let killedAt = 0;
    async function train(cfg, makeRanks, kill) {
      let trainer = null;
      trainer = await Trainer.create({ cfg, data, makeRanks, onPhase: (e) => {
        if (kill && e.step === o.killStep && e.phase === 'aggregator' && e.at === 'start' && !killedAt) { killedAt = performance.now(); trainer.ranks[1].kill(); }
      } });
      const doneAt = [];
      for (let s = 0; s < o.steps; s++) { await trainer.step(); doneAt.push(performance.now()); }
      const out = { losses: trainer.history.steps.map((s) => s.loss), encoder: await trainer.engine.encoderWeights(), aggregator: await trainer.engine.aggregatorWeights(),
        replicas: await Promise.all(trainer.ranks.map((r) => r.getWeights())), faults: trainer.faults, doneAt, backends: trainer.rankInfo.map((r) => r.backend) };
      await trainer.dispose();
      return out;
    }
    const reference = await train(parseConfig({ ...base, backend: 'cpu' }), (n) => inProcessRanks(n), false);
    const faulty = (n) => webWorkerRanks(n).map((r, i) => o.faults[i] ? withControls(delegateRank(r, { init: (x) => r.init({ ...x, testFault: o.faults[i] }) }), r) : r);
    const run = await train(parseConfig({ ...base, backend: o.backend }), faulty, o.killStep !== undefined);
    return {
      losses: run.losses, reference: reference.losses,
      encoderL1: normalizedL1(run.encoder, reference.encoder), aggregatorL1: normalizedL1(run.aggregator, reference.aggregator),
      replicasL1: run.replicas.map((w) => normalizedL1(w, run.encoder)),
      faults: run.faults.map((f) => ({ ...f })), text: run.faults.map(describeFault), killedAt, doneAt: run.doneAt, backends: run.backends,
    };
  })()`) as Promise<Outcome>;
}

function expectSameRun(r: Outcome, steps: number, bound: number) {
  expect(r.losses).toHaveLength(steps);
  r.losses.forEach((l, i) => expect(Math.abs(l - r.reference[i])).toBeLessThan(TOLERANCE.loss));
  expect(r.encoderL1).toBeLessThan(bound);
  expect(r.aggregatorL1).toBeLessThan(bound);
  for (const d of r.replicasL1) expect(d).toBe(0);
}

describe('rank faults in Chromium (Web Worker ranks)', () => {
  it('a worker with an uncaught error mid-step, and one terminated mid-step, are restarted from a healthy replica; the run equals an uninterrupted one', async () => {
    const r = await scenario({ backend: 'cpu', steps: 3, faults: [{ kind: 'throw', call: 'backward', nth: 2 }], killStep: 2 });
    console.log(JSON.stringify({ text: r.text, killDetectedMs: r.faults[1] && r.faults[1].detectedAt - r.killedAt, restoredMs: r.faults.map((f) => f.restoredAt - f.detectedAt), stepDoneAfterKillMs: r.doneAt[2] - r.killedAt }));
    expect(r.faults).toHaveLength(2);
    expect(r.faults[0]).toMatchObject({ kind: 'crashed', rank: 0, call: 'backward', step: 1, restarted: [0], donor: 1, retried: true });
    expect(r.faults[0].reason).toMatch(/uncaught error/);
    expect(r.faults[1]).toMatchObject({ kind: 'crashed', rank: 1, step: 2, restarted: [1], donor: 0, retried: true });
    expectSameRun(r, 3, TOLERANCE.param);
  }, 300_000);

  it('a rank whose WebGPU device is destroyed mid-step fails as DeviceLost, restarts on a new device and the run equals an uninterrupted one', async () => {
    const r = await scenario({ backend: 'webgpu', steps: 2, faults: [undefined, { kind: 'device-lost', call: 'backward', nth: 2 }] });
    console.log(JSON.stringify({ text: r.text, restoredMs: r.faults.map((f) => f.restoredAt - f.detectedAt), backends: r.backends }));
    expect(r.backends).toEqual(['webgpu', 'webgpu']);
    expect(r.faults).toHaveLength(1);
    expect(r.faults[0]).toMatchObject({ kind: 'device-lost', rank: 1, call: 'backward', step: 1, restarted: [1], donor: 0, retried: true });
    expect(r.faults[0].reason).toMatch(/destroyed/);
    expectSameRun(r, 2, TOLERANCE.param);
  }, 300_000);
});

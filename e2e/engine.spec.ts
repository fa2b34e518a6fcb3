// The engine in headless Chromium: 2 Web Worker ranks, each with its own WebGPU device
// (SwiftShader here, a real GPU with SLIDE_LAB_GPU=1), against the single-graph reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestPage, type TestPage } from '../tools/chromium.ts';
import { TOLERANCE, trackedLayers } from '../src/core/equivalence.ts';
import { parseConfig } from '../src/core/config.ts';

// A ViT-Ti-shaped encoder (timm semantics: class token, GELU MLP, cls pooling), 2x2 patches of 16 px tiles.
const VIT_CFG = { seed: 3, ranks: 2, tiles: 4, tileSize: 16, microBatch: 2, backend: 'webgpu', encoder: { kind: 'vit', patch: 8, dim: 32, blocks: 2, heads: 2, mlpHidden: 64 } };
const TRACKED = trackedLayers(parseConfig(VIT_CFG));
// The page's own context (the reference and the aggregator) as the lab's mainBackend=auto picks
// it: the cpu backend beside SwiftShader (compiling the ViT's shaders a third time there would
// add about 40 s on 2 cores), WebGPU on a real GPU.
const MAIN = process.env.SLIDE_LAB_GPU === '1' ? 'webgpu' : 'cpu';

let t: TestPage;

beforeAll(async () => {
  t = await openTestPage('/e2e/pages/engine.html', 120_000);
});
afterAll(async () => {
  await t?.browser.close();
});

describe('engine in Chromium with Web Worker ranks on WebGPU', () => {
  it('matches the single-graph reference with 2 ranks, each on its own adapter', async () => {
    const result = await t.page.evaluate(() => (window as any).slideLabTest.run({ ranks: 2, steps: 3, backend: 'webgpu', trainSteps: 3 }));
    console.log(JSON.stringify({ main: result.main, ranks: result.ranks, rows: result.rows, stepMs: result.steps.map((s: any) => s.wallMs) }, null, 1));
    expect(result.crossOriginIsolated).toBe(true);
    expect(result.main.backend).toBe('webgpu');
    expect(result.ranks.map((r: any) => [r.rank, r.backend, r.runtime])).toEqual([[0, 'webgpu', 'web-worker'], [1, 'webgpu', 'web-worker']]);
    for (const r of result.ranks) expect(r.adapter).not.toBeNull();
    expect(result.rows).toHaveLength(3);
    for (const row of result.rows) {
      expect(row.lossDiff).toBeLessThan(TOLERANCE.loss);
      for (const v of [...Object.values(row.param), ...Object.values(row.grad)] as number[]) expect(v).toBeLessThan(TOLERANCE.grad);
      // every parameter of encoder and aggregator, not only the tracked three, within the webgpu bound
      expect(Object.keys(row.every.param).length).toBeGreaterThan(3);
      expect(row.every.backend).toBe('webgpu');
      expect(row.every.zeroGrad).toEqual([]);
      expect(row.every.pass, `${row.every.worstParam.name} ${row.every.worstParam.value}, ${row.every.worstGrad.name} ${row.every.worstGrad.value}`).toBe(true);
    }
    for (const step of result.steps) {
      expect(step.perRank).toHaveLength(2);
      expect(step.replicaDrift).toBeLessThanOrEqual(1e-6);
    }
    // Tensor hygiene: live tensors are flat from step to step in both workers and in the page.
    const [first, ...rest] = result.steps;
    for (const step of rest) {
      expect(step.mainTensors).toBe(first.mainTensors);
      for (const r of step.perRank) expect(r.numTensors).toBe(first.perRank[r.rank].numTensors);
    }
  }, 600_000);

  it('sums encoder gradients in shared memory between the workers (no main-context round trip)', async () => {
    const result = await t.page.evaluate(() => (window as any).slideLabTest.run({ ranks: 2, steps: 2, backend: 'webgpu', reduction: 'shared' }));
    expect(result.crossOriginIsolated).toBe(true);
    for (const row of result.rows) expect(row.pass).toBe(true);
    for (const step of result.steps) {
      expect(step.reduction).toBe('shared');
      expect(step.bytes.reduce).toBe(0);
      for (const r of step.perRank) expect(r.ms.reduce).toBeGreaterThanOrEqual(0);
    }
  }, 600_000);

  it('a ViT-Ti-shaped encoder started from given (pretrained) weights: 2 ranks equal the reference, and both replicas start from those weights', async () => {
    // About 90 s on 2 CPU cores: the first step compiles the ViT's WebGPU shaders in both workers.
    // The engine page's own modules, imported again by URL (the same module instances); a string
    // so that Vitest does not rewrite the dynamic imports for Node.
    const result = await t.page.evaluate(`(async () => {
      const [{ parseConfig }, { runEquivalence }, { syntheticSlides, SyntheticTiles }, { webWorkerRanks }, { encoderSpecs }, { packInitialValues }, { setupBrowserBackend }] = await Promise.all(
        ['/src/core/config.ts', '/src/core/equivalence.ts', '/src/core/tiles.ts', '/src/transport/web-worker.ts', '/src/core/models/encoder.ts', '/src/core/params.ts', '/src/runtime/browser.ts'].map((u) => import(u)));
      const main = await setupBrowserBackend('${MAIN}');
      const cfg = parseConfig(${JSON.stringify(VIT_CFG)});
      const slides = syntheticSlides(4, cfg.seed, 10);
      // "Pretrained" weights: another seed's init, so they differ from what the ranks would draw.
      const weights = packInitialValues(encoderSpecs(cfg.encoder, cfg.tileSize), 99);
      const workers = webWorkerRanks(2);
      // Each rank's weights right after init and before dispose, read back from its worker.
      const start = [], end = [], infos = [];
      const ranks = workers.map((w, i) => ({
        ...w,
        init: async (req) => { const info = await w.init(req); infos[i] = info; start[i] = await w.getWeights(); return info; },
        dispose: async () => { end[i] = await w.getWeights(); return w.dispose(); },
      }));
      try {
        const t0 = performance.now();
        const rows = await runEquivalence({ cfg, slides, ranks, tileSpec: { kind: 'synthetic', seed: cfg.seed, slides }, referenceTiles: new SyntheticTiles(cfg.seed, slides), steps: 2, engineOptions: { encoderWeights: weights } });
        const same = (a, b) => a.length === b.length && a.every((x, j) => x === b[j]);
        let moved = 0;
        for (let j = 0; j < weights.length; j++) moved = Math.max(moved, Math.abs(end[0][j] - weights[j]));
        return {
          main, ranks: infos, rows, wallMs: performance.now() - t0, params: weights.length, crossOriginIsolated: globalThis.crossOriginIsolated,
          startsFromGiven: start.map((w) => same(w, weights)), replicasEqualAtEnd: same(end[0], end[1]), moved,
        };
      } finally {
        workers.forEach((w) => w.terminate());
      }
    })()`) as any;
    const worst = { loss: 0, param: 0, grad: 0 };
    for (const row of result.rows) {
      worst.loss = Math.max(worst.loss, row.lossDiff);
      worst.param = Math.max(worst.param, ...(Object.values(row.param) as number[]));
      worst.grad = Math.max(worst.grad, ...(Object.values(row.grad) as number[]));
    }
    console.log(JSON.stringify({
      vit: VIT_CFG.encoder, tiles: VIT_CFG.tiles, tileSize: VIT_CFG.tileSize, microBatch: VIT_CFG.microBatch, params: result.params, main: result.main.backend,
      ranks: result.ranks.map((r: any) => ({ rank: r.rank, backend: r.backend, runtime: r.runtime, adapter: r.adapter && [r.adapter.vendor, r.adapter.architecture].join(' ') })),
      rows: result.rows.map((r: any) => ({ step: r.step, lossReference: r.lossReference, lossRanks: r.lossRanks, lossDiff: r.lossDiff, param: r.param, grad: r.grad, stepMs: Math.round(r.stepMs), referenceMs: Math.round(r.referenceMs) })),
      worst, wallMs: Math.round(result.wallMs), startsFromGiven: result.startsFromGiven, replicasEqualAtEnd: result.replicasEqualAtEnd, movedFromGiven: result.moved,
    }, null, 1));
    expect(result.crossOriginIsolated).toBe(true);
    expect(result.main.backend).toBe(MAIN);
    expect(result.ranks.map((r: any) => [r.rank, r.backend, r.runtime])).toEqual([[0, 'webgpu', 'web-worker'], [1, 'webgpu', 'web-worker']]);
    for (const r of result.ranks) expect(r.adapter).not.toBeNull();
    expect(result.rows).toHaveLength(2);
    for (const row of result.rows) {
      expect(Object.keys(row.grad)).toEqual(TRACKED);
      expect(row.pass).toBe(true);
      expect(row.lossDiff).toBeLessThan(TOLERANCE.loss);
      for (const v of Object.values(row.param) as number[]) expect(v).toBeLessThan(TOLERANCE.param);
      for (const v of Object.values(row.grad) as number[]) expect(v).toBeLessThan(TOLERANCE.grad);
    }
    // Both replicas held exactly the given weights after init (the reference started from them
    // too), stayed identical, and two AdamW steps of lr 1e-3 moved them a little.
    expect(result.startsFromGiven).toEqual([true, true]);
    expect(result.replicasEqualAtEnd).toBe(true);
    expect(result.moved).toBeGreaterThan(0);
    expect(result.moved).toBeLessThan(1e-2);
  }, 600_000);
});

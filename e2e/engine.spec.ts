// The engine in headless Chromium: 2 Web Worker ranks, each with its own WebGPU device
// (SwiftShader here, a real GPU with SLIDE_LAB_GPU=1), against the single-graph reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestPage, type TestPage } from './browser.ts';
import { TOLERANCE } from '../src/core/equivalence.ts';

let t: TestPage;

beforeAll(async () => {
  t = await openTestPage('/e2e/pages/engine.html', 120_000);
});
afterAll(async () => {
  await t?.browser.close();
});

describe('engine in Chromium with Web Worker ranks on WebGPU', () => {
  it('matches the single-graph reference with 2 ranks, each on its own adapter', async () => {
    const result = await t.page.evaluate(() => (window as any).slideLabTest.run({ ranks: 2, steps: 3, backend: 'webgpu' }));
    console.log(JSON.stringify({ main: result.main, ranks: result.ranks, rows: result.rows, stepMs: result.steps.map((s: any) => s.wallMs) }, null, 1));
    expect(result.crossOriginIsolated).toBe(true);
    expect(result.main.backend).toBe('webgpu');
    expect(result.ranks.map((r: any) => [r.rank, r.backend, r.runtime])).toEqual([[0, 'webgpu', 'web-worker'], [1, 'webgpu', 'web-worker']]);
    for (const r of result.ranks) expect(r.adapter).not.toBeNull();
    expect(result.rows).toHaveLength(3);
    for (const row of result.rows) {
      expect(row.lossDiff).toBeLessThan(TOLERANCE.loss);
      for (const v of [...Object.values(row.param), ...Object.values(row.grad)] as number[]) expect(v).toBeLessThan(TOLERANCE.grad);
    }
    for (const step of result.steps) {
      expect(step.perRank).toHaveLength(2);
      expect(step.replicaDrift).toBeLessThanOrEqual(1e-6);
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
});

// Our WebGPU Conv2DBackpropFilter and Conv2DBackpropInput in headless Chromium (SwiftShader here; a real GPU with
// SLIDE_LAB_GPU=1) against tfjs's cpu kernel on the same random inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestPage, withTimeout, type TestPage } from '../tools/chromium.ts';

let t: TestPage;

beforeAll(async () => {
  t = await openTestPage('/bench/pages/kernels.html', 120_000);
});
afterAll(async () => {
  await t?.browser.close();
});

describe('training kernels in Chromium WebGPU', () => {
  const cases = [
    { kernel: 'filter', name: 'Conv2DBackpropFilter', count: 8 },
    { kernel: 'input', name: 'Conv2DBackpropInput', count: 11 },
  ] as const;
  it.each(cases)('$name matches the cpu backend on random shapes (relative L2 < 1e-4)', async ({ kernel, name, count }) => {
    const out = await withTimeout(t.page.evaluate((k) => (window as any).slideLabKernels.check(k), kernel), 300_000, `${name} check`, t.log);
    console.log(JSON.stringify({ adapter: out.backend.adapter, results: out.results }, null, 1));
    expect(out.backend.backend).toBe('webgpu');
    expect(out.active).toEqual(['Conv2DBackpropFilter', 'Conv2DBackpropInput']);
    expect(out.results).toHaveLength(count);
    const ours = kernel === 'filter' ? 'slideLabConv2DDerFilterGemm' : 'slideLabConv2DDerInputGemm';
    for (const r of out.results) {
      expect(r.programs.some((p: string) => p.includes(ours)), `${r.name} ran ${r.programs}`).toBe(true);
      expect(r.relL2, r.name).toBeLessThan(1e-4);
      expect(r.tensorsLeaked, r.name).toBe(0);
      expect(r.dataIdsLeaked, r.name).toBe(0);
    }
  }, 400_000);
});

// Our WebGPU Conv2DBackpropFilter in headless Chromium (SwiftShader here; a real GPU with
// SLIDE_LAB_GPU=1) against tfjs's cpu kernel on the same random inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launch, labUrl, watchPage } from './browser.ts';

let browser: Browser;
let page: Page;
let log: string[];

beforeAll(async () => {
  browser = await launch();
  page = await browser.newPage();
  log = watchPage(page);
  await page.goto(labUrl('/e2e/pages/kernels.html'));
  await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
});
afterAll(async () => {
  await browser?.close();
});

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms; page said:\n${log.join('\n')}`)), ms))]);

describe('training kernels in Chromium WebGPU', () => {
  it('Conv2DBackpropFilter matches the cpu backend on random shapes (relative L2 < 1e-4)', async () => {
    const out = await withTimeout(page.evaluate(() => (window as any).slideLabKernels.check()), 300_000, 'kernel check');
    console.log(JSON.stringify({ adapter: out.backend.adapter, results: out.results }, null, 1));
    expect(out.backend.backend).toBe('webgpu');
    expect(out.active).toEqual(['Conv2DBackpropFilter']);
    expect(out.results).toHaveLength(8);
    for (const r of out.results) {
      expect(r.relL2, r.name).toBeLessThan(1e-4);
      expect(r.tensorsLeaked, r.name).toBe(0);
      expect(r.dataIdsLeaked, r.name).toBe(0);
    }
  }, 400_000);
});

// Faults of the page itself, in Chromium (issue #11), with the whole lab:
// - the main context's WebGPU device (the aggregator's, mainBackend=webgpu on SwiftShader) is
//   destroyed in the middle of a step: the run stops, sets up a new device, goes on from the last
//   IndexedDB checkpoint to the end, ends with an uninterrupted run's weights, and the page says so;
// - a rank worker exhausts its V8 heap: Chromium takes the whole renderer down (no `error` event
//   reaches the page, so nothing in the page can recover); reopening the lab resumes from the
//   checkpoint, not from step 0, and the run finishes.
// Two ranks on the cpu backend and synthetic 16 px tiles keep both short. The first test is still
// the longer one (147 s at load 5-7 on 2 cores, 2026-12-02): SwiftShader compiles the aggregator's
// shaders for each new device (22-24 s of the first step, and again of the step after the loss).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, chromiumArgs, labUrl, watchPage } from '../tools/chromium.ts';
import { clickSurvivingReload, figures, labBrowserHooks, resumeFromBanner, waitLab } from './lab-page.ts';
import { TOLERANCE } from '../src/core/equivalence.ts';
import { normalizedL1 } from '../src/core/metrics.ts';

// 4 training and 2 validation slides: one epoch of 4 steps; a checkpoint after every step.
const TINY = 'data=synthetic&subset=6&encoder.width=4&tileSize=16&tiles=6&microBatch=3&ranks=2&epochs=1&backend=cpu&augment.blur=0&evalTiles=6&optimizer.lr=0.003';
const LOSE_AT = 2;

/** The live run's encoder and aggregator weights, as plain arrays. */
const weights = (p: Page) =>
  p.evaluate(async () => {
    const t = (window as any).slideLab.trainer;
    return { encoder: Array.from(await t.engine.encoderWeights()) as number[], aggregator: Array.from(await t.engine.aggregatorWeights()) as number[] };
  });

/** Each step's wall time and aggregator phase (s), as the run's metrics have them. */
const stepTimes = (p: Page) =>
  p.evaluate(() =>
    'steps (wall/aggregator s): ' + (window as any).slideLab.metricsJson().steps.map((st: { wallMs: number; main: Record<string, number> }) => `${(st.wallMs / 1000).toFixed(1)}/${((st.main.aggregator ?? NaN) / 1000).toFixed(1)}`).join(' '),
  );

async function openReady(p: Page, hash: string, query = ''): Promise<void> {
  await p.goto(labUrl(`/${query}#${hash}`), { timeout: 180_000 }); // a cold Vite server transforms the lab's modules first
  await waitLab(p, "lab.data && lab.state === 'ready'", 180_000);
  await p.waitForLoadState('networkidle');
  await waitLab(p, "lab.data && lab.state === 'ready'", 60_000);
}

describe("the page's own WebGPU device lost mid-step (mainBackend=webgpu)", () => {
  let page: Page;
  labBrowserHooks((b) => ({ page } = b), 30);

  it('the run stops, gets a new device, goes on from the checkpoint to the end with the uninterrupted run\'s weights, and the page says so', async () => {
    await openReady(page, `${TINY}&mainBackend=webgpu`);
    await page.evaluate(() => (window as any).slideLab.discardCheckpoint());
    // The uninterrupted run.
    const tPlain = Date.now();
    await clickSurvivingReload(page, '[data-testid=btn-start]', 'lab.history.steps.length >= 1');
    await waitLab(page, "lab.state === 'done' || lab.state === 'error'", 180_000);
    const plain = await figures(page);
    console.log(`uninterrupted run (mainBackend=webgpu): ${((Date.now() - tPlain) / 1000).toFixed(1)} s; ${await stepTimes(page)}`);
    expect(plain.error).toBeNull();
    expect(plain.steps).toHaveLength(4);
    const main = await page.evaluate(() => (window as any).slideLab.mainBackend);
    expect(main.backend).toBe('webgpu'); // the aggregator really is on the page's WebGPU device
    const want = await weights(page);

    // The same run again; the page's device is destroyed (the test-only hook of runtime/webgpu.ts,
    // the same module instance the lab uses) when step LOSE_AT's aggregator starts.
    const t0 = Date.now();
    // A string, not a function: Vitest would rewrite a dynamic import() inside a function for Node.
    await page.evaluate(`(async () => {
      const lab = window.slideLab;
      const gpu = await import('/src/runtime/webgpu.ts');
      let lost = false;
      lab.on('phase', (e) => {
        if (!lost && e.step === ${LOSE_AT} && e.phase === 'aggregator' && e.at === 'start') {
          lost = true;
          gpu.destroyDeviceForTest();
        }
      });
      window.__faults = [];
      lab.on('fault', (f) => window.__faults.push(f));
      await lab.discardCheckpoint();
      void lab.start();
    })()`);
    await waitLab(page, "lab.state === 'error' || (window.__faults.length > 0 && lab.state === 'done')", 240_000);
    const lost = await figures(page);
    const faults = (await page.evaluate(() => (window as any).__faults)) as { kind: string; rank: number; call: string; step: number; text: string }[];
    console.log(`main device lost at step ${LOSE_AT}: ${faults.map((f) => f.text).join(' | ')}; run with the loss ${((Date.now() - t0) / 1000).toFixed(1)} s; ${await stepTimes(page)}`);
    expect(lost.error).toBeNull();
    expect(lost.state).toBe('done');
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ kind: 'device-lost', rank: -1, call: 'aggregator', step: LOSE_AT });
    expect(faults[0].text).toMatch(new RegExp(`^the page's WebGPU device was lost \\(device lost \\(destroyed.*\\)\\) at step ${LOSE_AT}; a new device was set up and training goes on from the checkpoint of step ${LOSE_AT}$`));
    // The user sees it.
    await expect.poll(() => page.locator('[data-testid=lab-notice]').textContent()).toMatch(/the page's WebGPU device was lost .* a new device was set up and training goes on from the checkpoint of step/);
    // Every step, once; the aggregator is on WebGPU again (the new device).
    expect(lost.steps).toEqual(plain.steps);
    expect(lost.slides).toEqual(plain.slides);
    expect((await page.evaluate(() => (window as any).slideLab.mainBackend)).backend).toBe('webgpu');
    const got = await weights(page);
    const diff = {
      encoder: normalizedL1(Float32Array.from(got.encoder), Float32Array.from(want.encoder)),
      aggregator: normalizedL1(Float32Array.from(got.aggregator), Float32Array.from(want.aggregator)),
      loss: Math.max(...lost.losses.map((l, i) => Math.abs(l - plain.losses[i]))),
    };
    console.log(`main device lost vs uninterrupted: ${JSON.stringify(diff)}`);
    expect(diff.encoder).toBeLessThanOrEqual(TOLERANCE.param);
    expect(diff.aggregator).toBeLessThanOrEqual(TOLERANCE.param);
    expect(diff.loss).toBeLessThanOrEqual(TOLERANCE.loss);
  }, 600_000);
});

/** Every V8 heap in the renderer (the page's and each worker's) is limited to this; the page needs less. */
const HEAP_MB = 64;
/** Rank 1 allocates until its heap is exhausted in step 2's backward (page URL, test only). */
const OOM = { rank: 1, kind: 'oom', call: 'backward', nth: 3 };

describe('a rank worker out of memory takes the renderer down; reopening the lab resumes from the checkpoint', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...chromiumArgs(), `--js-flags=--max-old-space-size=${HEAP_MB}`] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('the page crashes (no error event reaches it), a new page resumes at the checkpoint step, not 0, and the run finishes', async () => {
    const context = await browser.newContext(); // one context: the new page sees the crashed one's IndexedDB
    const page = await context.newPage();
    const pageLog = watchPage(page);
    await openReady(page, TINY, `?testFault=${encodeURIComponent(JSON.stringify(OOM))}`);
    await page.evaluate(() => (window as any).slideLab.discardCheckpoint());
    let crashedAt = 0;
    const crashed = new Promise<void>((resolve) => page.once('crash', () => ((crashedAt = Date.now()), resolve())));
    const t0 = Date.now();
    await clickSurvivingReload(page, '[data-testid=btn-start]', 'lab.history.steps.length >= 1');
    // Whatever the page notices of the worker's death (a fault, a rank error) reaches the log before the crash.
    await page.evaluate(() => {
      const lab = (window as any).slideLab;
      lab.on('fault', (f: { text: string }) => console.log(`[fault] ${f.text}`));
      lab.on('error', (e: { where: string; message: string } | null) => e && console.log(`[lab error] ${e.where}: ${e.message}`));
    });
    await Promise.race([crashed, new Promise((_, reject) => setTimeout(() => reject(new Error(`no renderer crash within 240 s; page said:\n${pageLog.slice(-20).join('\n')}`)), 240_000))]);
    const noticed = pageLog.filter((l) => /^\[(fault|lab error)\]|rank worker 1|out of memory/i.test(l));
    console.log(`renderer crashed ${((crashedAt - t0) / 1000).toFixed(1)} s after Train (V8 heaps limited to ${HEAP_MB} MB); what the page noticed of the worker before the crash: ${noticed.length ? noticed.join(' | ') : 'nothing'}`);
    await page.close().catch(() => undefined);

    // Reopen the lab (without the fault) in the same browser context: it offers the checkpoint.
    const again = await context.newPage();
    const againLog = watchPage(again);
    try {
      await openReady(again, TINY);
      const at = await resumeFromBanner(again);
      expect(at).toBe(OOM.nth - 1); // the checkpoint after the last step done, not step 0
      const f = await figures(again);
      expect(f.error).toBeNull();
      expect(f.state).toBe('done');
      expect(f.steps).toEqual([0, 1, 2, 3]);
      console.log(`resumed at step ${at} and finished: ${((Date.now() - crashedAt) / 1000).toFixed(1)} s from the crash; losses ${f.losses.map((l) => l.toFixed(4)).join(' ')}`);
    } catch (e) {
      console.log(againLog.slice(-20).join('\n'));
      throw e;
    } finally {
      await context.close();
    }
  }, 600_000);
});

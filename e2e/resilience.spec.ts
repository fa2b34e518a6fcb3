// Faults the lab survives, in Chromium (issue #11): a reload in the middle of a step resumes from
// the IndexedDB checkpoint and ends with the weights of an uninterrupted run; with IndexedDB over
// its quota, or unavailable (a private window), training goes on and says so. Two Web Worker ranks
// on the cpu backend and synthetic tiles keep it short (the reload and storage paths do not depend
// on the backend; e2e/lab.spec.ts reloads a WebGPU run too).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { labUrl } from '../tools/chromium.ts';
import { clickSurvivingReload, figures, labBrowserHooks, resumeFromBanner, waitLab } from './lab-page.ts';
import { TOLERANCE } from '../src/core/equivalence.ts';
import { normalizedL1 } from '../src/core/metrics.ts';
import { watchPage } from '../tools/chromium.ts';

// 4 training and 2 validation slides: one epoch of 4 steps.
const RUN = '/#data=synthetic&subset=6&encoder.width=4&tileSize=16&tiles=6&microBatch=3&ranks=2&epochs=1&backend=cpu&augment.blur=0&evalTiles=6&optimizer.lr=0.003';
const RELOAD_AT = 2;

let browser: Browser;
let page: Page;
labBrowserHooks((b) => ({ browser, page } = b), 30);

/** The run trained all 4 steps, and the page says (under 'checkpoints', naming `why`) that checkpoints are not being saved. */
async function expectDoneWithoutCheckpoints(p: Page, why: string): Promise<void> {
  await waitLab(p, "lab.state === 'done' || lab.state === 'error'", 180_000);
  const f = await figures(p);
  expect(f.state).toBe('done');
  expect(f.steps).toHaveLength(4);
  expect(f.error?.where).toBe('checkpoints');
  expect(f.error?.message).toMatch(new RegExp(`${why}.*Training goes on`));
  await expect.poll(() => p.locator('[data-testid=lab-error]').textContent()).toMatch(/checkpoints are not being saved/);
}

/** The live run's encoder and aggregator weights, as plain arrays. */
const weights = (p: Page) =>
  p.evaluate(async () => {
    const t = (window as any).slideLab.trainer;
    return { encoder: Array.from(await t.engine.encoderWeights()) as number[], aggregator: Array.from(await t.engine.aggregatorWeights()) as number[] };
  });

async function openReady(p: Page): Promise<void> {
  await p.goto(labUrl(RUN), { timeout: 180_000 }); // a cold Vite server transforms the lab's modules first
  await waitLab(p, "lab.data && lab.state === 'ready'", 180_000);
  await p.waitForLoadState('networkidle');
  await waitLab(p, "lab.data && lab.state === 'ready'", 60_000);
}

describe('the lab survives faults', () => {
  it('a reload in the middle of a step resumes from the checkpoint and ends with the uninterrupted run\'s weights', async () => {
    await openReady(page);
    await page.evaluate(() => (window as any).slideLab.discardCheckpoint());
    // The uninterrupted run.
    await clickSurvivingReload(page, '[data-testid=btn-start]', 'lab.history.steps.length >= 1');
    await waitLab(page, "lab.state === 'done' || lab.state === 'error'", 180_000);
    const plain = await figures(page);
    expect(plain.error).toBeNull();
    const want = await weights(page);

    // The same run again, reloaded from inside step RELOAD_AT while its ranks encode.
    const reloaded = page.waitForEvent('load', { timeout: 180_000 });
    await page.evaluate((at) => {
      const lab = (window as any).slideLab;
      lab.on('phase', (e: { step: number; phase: string; at: string }) => {
        if (e.step === at && e.phase === 'forward' && e.at === 'start') location.reload();
      });
      void lab.discardCheckpoint().then(() => lab.start());
    }, RELOAD_AT);
    await reloaded;
    expect(await resumeFromBanner(page)).toBe(RELOAD_AT);
    const resumed = await figures(page);
    expect(resumed.error).toBeNull();
    expect(resumed.steps).toEqual(plain.steps); // the step cut by the reload was redone, nothing else lost
    expect(resumed.slides).toEqual(plain.slides);
    const got = await weights(page);
    const diff = {
      encoder: normalizedL1(Float32Array.from(got.encoder), Float32Array.from(want.encoder)),
      aggregator: normalizedL1(Float32Array.from(got.aggregator), Float32Array.from(want.aggregator)),
      loss: Math.max(...resumed.losses.map((l, i) => Math.abs(l - plain.losses[i]))),
    };
    console.log(`reload at step ${RELOAD_AT} of ${plain.steps.length}, resumed vs uninterrupted: ${JSON.stringify(diff)}`);
    expect(diff.encoder).toBeLessThanOrEqual(TOLERANCE.param);
    expect(diff.aggregator).toBeLessThanOrEqual(TOLERANCE.param);
    expect(diff.loss).toBeLessThanOrEqual(TOLERANCE.loss);
  }, 900_000);

  it('with IndexedDB over its quota, training goes on and a notice says checkpoints are not saved', async () => {
    // A fresh page and session (a goto to the same URL changes only the hash, so reload).
    await page.goto(labUrl(RUN), { timeout: 180_000 });
    await page.reload();
    await waitLab(page, "lab.data && lab.state === 'ready'", 180_000);
    await page.evaluate(() => {
      IDBObjectStore.prototype.put = function () {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      };
      return (window as any).slideLab.start();
    });
    await expectDoneWithoutCheckpoints(page, 'QuotaExceededError');
  }, 480_000);

  it('with IndexedDB unavailable (a private window), training goes on with the same notice', async () => {
    const p = await browser.newPage();
    const plog = watchPage(p);
    try {
      await p.addInitScript(() => {
        IDBFactory.prototype.open = function () {
          throw new DOMException('A mutation operation was attempted on a database that did not allow mutations.', 'InvalidStateError');
        };
      });
      await openReady(p);
      await clickSurvivingReload(p, '[data-testid=btn-start]', 'lab.history.steps.length >= 1');
      await expectDoneWithoutCheckpoints(p, 'InvalidStateError');
    } catch (e) {
      console.log(plog.slice(-20).join('\n'));
      throw e;
    } finally {
      await p.close();
    }
  }, 480_000);
});

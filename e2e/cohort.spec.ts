// Your own cohort by URL in Chromium: a generated cohort (pyramidal TIFFs at 0.25 µm/px and a
// manifest with bad rows) served by the test server under /test-cohorts (HTTP Range) and
// /test-cohorts-norange (a server that ignores Range). A `data=manifest:` link loads it on a
// 1 µm/px grid (level 2 of each slide), names every bad row or slide, and trains 2 steps; the
// server without range support gets the clear error for every slide.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { artifactPath, labUrl } from '../tools/chromium.ts';
import { clickSurvivingReload, closeLabBrowser, figures, openLabBrowser, waitLab } from './lab-page.ts';
import { loadTexture } from '../scripts/make-fixtures.ts';
import { testScene, testSlideBytes, writeTestCohort } from '../src/slide/testing/cohort-slides.ts';

const DIR = '.fixtures/cohorts/e2e';
const SMALL = 'encoder.kind=tiny-cnn&encoder.width=4&tileSize=16&tiles=4&microBatch=4&ranks=2&backend=cpu&epochs=1&evalTiles=4&augment.blur=0&grid.mpp=1&grid.tile=64';
const served = Boolean(process.env.SLIDE_LAB_TEST_COHORTS);

let browser: Browser;
let page: Page;
let log: string[];
let good: string[] = [];

beforeAll(async () => {
  if (!served) return;
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const texture = await loadTexture();
  good = writeTestCohort(DIR, texture, { count: 6, width: 1024, height: 768, mpp: 0.25, seed: 3 }).map((r) => r.slide);
  writeFileSync(join(DIR, 'slides/nompp.tiff'), testSlideBytes(testScene(texture, 1024, 768, 99), 1024, 768, { mpp: null, pyramid: [2, 4] }));
  const manifest = readFileSync(join(DIR, 'manifest.csv'), 'utf8');
  writeFileSync(join(DIR, 'manifest.csv'), manifest + [
    'nompp,1,train,slides/nompp.tiff',
    'escape,0,train,../../cohorts/e2e/slides/case-000.tiff',
    'case-000,1,train,slides/case-001.tiff',
    'badlabel,2,train,slides/case-001.tiff',
    'badsplit,0,test,slides/case-001.tiff',
  ].join('\n') + '\n');
  ({ browser, page, log } = await openLabBrowser());
}, 120_000);
afterAll(() => (served ? closeLabBrowser({ browser, log }, 30) : undefined));

describe.skipIf(!served)('a cohort by manifest URL', () => {
  it('the test server answers Range requests (and its no-range twin does not)', async () => {
    const whole = readFileSync(join(DIR, 'slides/case-000.tiff'));
    const r = await fetch(labUrl('/test-cohorts/e2e/slides/case-000.tiff'), { headers: { Range: 'bytes=100-199' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 100-199/${whole.length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(whole.subarray(100, 200))).toBe(true);
    const tail = await fetch(labUrl('/test-cohorts/e2e/slides/case-000.tiff'), { headers: { Range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(whole.subarray(whole.length - 10))).toBe(true);
    expect((await fetch(labUrl('/test-cohorts/e2e/slides/case-000.tiff'), { headers: { Range: `bytes=${whole.length}-` } })).status).toBe(416);
    const norange = await fetch(labUrl('/test-cohorts-norange/e2e/slides/case-000.tiff'), { headers: { Range: 'bytes=100-199' } });
    expect(norange.status).toBe(200);
    await norange.body?.cancel();
    expect((await fetch(labUrl('/test-cohorts/..%2fpackage.json'))).status).toBe(403); // an encoded ../ stays inside the folder
  });

  it('a data=manifest: link loads the cohort on its grid, names the bad rows and slides, and trains 2 steps', async () => {
    await page.goto(labUrl(`/#${SMALL}&data=manifest:/test-cohorts/e2e/manifest.csv`), { timeout: 180_000 }); // a cold dev server on a loaded machine
    await waitLab(page, "lab.data && lab.data.name === 'manifest.csv' && lab.state === 'ready'", 180_000);
    await page.waitForLoadState('networkidle');
    await waitLab(page, "lab.data && lab.state === 'ready'", 60_000);
    const data = await page.evaluate(() => {
      const d = (window as any).slideLab.data;
      return {
        usable: d.entries.map((e: any) => e.id), issues: d.issues as string[], source: d.source,
        slides: d.slides.map((s: any) => ({ id: s.id, error: s.error ?? null, mpp: s.mpp, level: s.level, levelMpp: s.levelMpp, resample: s.resample, tiles: s.tissueTiles })),
      };
    });
    expect(data.source).toEqual({ kind: 'manifest', url: '/test-cohorts/e2e/manifest.csv', subset: 0 });
    expect(data.usable).toEqual(good);
    for (const s of data.slides.filter((x: { error: string | null }) => !x.error)) expect([s.mpp, s.level, s.levelMpp, s.resample]).toEqual([0.25, 2, 1, false]);
    const err = (id: string) => data.slides.find((s: { id: string }) => s.id === id)?.error;
    expect(err('nompp')).toMatch(/no µm per pixel in the file and none in the manifest/);
    expect(err('escape')).toMatch(/leaves the manifest's folder/);
    expect(data.issues.join('\n')).toMatch(/line 10, slide: duplicate slide "case-000" \(first on line 2\)/);
    expect(data.issues.join('\n')).toMatch(/line 11, label: must be 0, 1/);
    expect(data.issues.join('\n')).toMatch(/line 12, split: must be train or val/);
    await expect.poll(() => page.locator('[data-testid="slide-error"]').count()).toBe(2);
    // The Setup panel's chain: slide mpp -> level -> grid -> model input.
    await expect.poll(() => page.locator('[data-testid="grid-chain"]').textContent()).toMatch(/0\.25 µm\/px.*level 2.*1 µm\/px.*64 px.*16 px/s);
    await page.screenshot({ path: artifactPath('cohort-data.png') });

    await clickSurvivingReload(page, '[data-testid=btn-step]', "lab.state === 'paused' && lab.history.steps.length === 1", 240_000);
    await page.click('[data-testid=btn-step]');
    await waitLab(page, "lab.state === 'paused' && lab.history.steps.length === 2", 120_000);
    const f = await figures(page);
    expect(f.error).toBeNull();
    expect(f.steps).toEqual([0, 1]);
    for (const l of f.losses) expect(Number.isFinite(l) && l > 0).toBe(true);
    for (const id of f.slides) expect(good).toContain(id);
    expect(decodeURIComponent(f.hash)).toContain('data=manifest:/test-cohorts/e2e/manifest.csv');
  });

  it('a server without range support: every slide gets the clear error, by name', async () => {
    await page.goto(labUrl(`/#${SMALL}&data=manifest:/test-cohorts-norange/e2e/manifest.csv`), { timeout: 180_000 });
    await waitLab(page, "lab.data && lab.data.name === 'manifest.csv' && lab.state === 'ready'", 120_000);
    const slides = await page.evaluate(() => (window as any).slideLab.data.slides.map((s: any) => ({ id: s.id, error: s.error ?? null })));
    expect(slides.filter((s: { error: string | null }) => s.error === null)).toEqual([]);
    for (const id of good) expect(slides.find((s: { id: string }) => s.id === id).error).toMatch(/the server does not support HTTP range requests/);
    const lastError = await page.evaluate(() => (window as any).slideLab.lastError);
    expect(lastError?.message).toMatch(/no usable slide/);
  });
});

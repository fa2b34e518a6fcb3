// The paper-figures experiment mode in Chromium at tiny size: the equivalence preset's tiny model
// on synthetic slides, 2 arms (end to end and frozen at K = 2) x R = 2 Monte Carlo splits, 2
// steps per run, on one set of warm Web Worker ranks; the figures drawn as SVG and exported as
// SVG, PNG (rasterised in the page), CSV and JSON.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { artifactPath, labUrl } from '../tools/chromium.ts';
import { clickSurvivingReload, csvRecords, downloadsOf, labBrowserHooks, waitLab } from './lab-page.ts';

let browser: Browser;
let page: Page;
labBrowserHooks((b) => ({ browser, page } = b), 30);

describe('paper figures in the lab', () => {
  it('R = 2 runs of 2 arms on warm workers give Figs. 4a-d and 5c with SVG, PNG, CSV and JSON exports', async () => {
    await page.goto(labUrl('/#preset=equivalence&panel=experiments'), { timeout: 240_000 }); // a cold dev server on a loaded machine
    await waitLab(page, "lab.data && lab.state === 'ready'", 60_000);
    await page.waitForLoadState('networkidle');
    await page.fill('[data-testid=paper-ks]', '2');
    await page.fill('[data-testid=paper-frozen-ks]', '2');
    await page.fill('[data-testid=paper-repeats]', '2');
    await page.fill('[data-testid=paper-steps]', '2');
    expect(await page.locator('[data-testid=run-paper]').textContent()).toBe('Run 4 runs');
    await clickSurvivingReload(page, '[data-testid=run-paper]', "lab.state === 'busy' || lab.paperFigures");
    await waitLab(page, "lab.state === 'ready' && (lab.paperFigures || lab.lastError)", 420_000);
    const f = await page.evaluate(() => {
      const lab = (window as any).slideLab;
      return { error: lab.lastError, fig: lab.paperFigures };
    });
    expect(f.error).toBeNull();
    const fig = f.fig;
    console.log(JSON.stringify({ runs: fig.runs.map((r: any) => [r.arm, r.repeat, r.steps, r.auc, r.reusedRanks, Math.round(r.wallMs)]), wallMs: fig.wallMs }));
    expect(fig.runs.map((r: any) => [r.arm, r.repeat, r.steps, r.reusedRanks])).toEqual([
      ['e2e K=2', 0, 2, false], ['frozen K=2', 0, 2, true], ['e2e K=2', 1, 2, true], ['frozen K=2', 1, 2, true],
    ]);
    expect(fig.runs[0].valSlides).toEqual(fig.runs[1].valSlides);
    expect(fig.runs[0].valSlides).not.toEqual(fig.runs[2].valSlides);
    for (const r of fig.runs) {
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(r.auc).toBeGreaterThanOrEqual(0);
      expect(r.auc).toBeLessThanOrEqual(1);
    }
    expect(fig.arms.map((a: any) => [a.arm, a.runs])).toEqual([['e2e K=2', 2], ['frozen K=2', 2]]);
    expect(fig.e2eVsFrozen.map((d: any) => [d.k, d.pairs])).toEqual([[2, 2]]);

    // The panel: a table row per arm, five figures drawn as SVG.
    expect(await page.locator('[data-testid=paper-table] [data-testid=paper-row]').count()).toBe(2);
    for (const id of ['fig4a', 'fig4b', 'fig4c', 'fig4d', 'fig5c']) expect(await page.locator(`[data-testid=paper-${id}] svg`).count()).toBe(1);
    expect(await page.locator('[data-testid=paper-fig4a] svg polygon').count()).toBe(2); // one bootstrap band per arm

    const [png] = await downloadsOf(page, '[data-testid=paper-fig4d-png]');
    expect(png.name).toBe('fig4d.png');
    expect(png.body.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.body.readUInt32BE(16)).toBe(1280); // 640-px SVG at scale 2
    const [svg] = await downloadsOf(page, '[data-testid=paper-fig4d-svg]');
    expect(svg.body.toString('utf8')).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>$/);
    const [csv] = await downloadsOf(page, '[data-testid=paper-fig4c-csv]');
    const rows = csvRecords(csv.body.toString('utf8'));
    expect(rows.map((r) => [r.arm, r.runs])).toEqual([['e2e K=2', '2'], ['frozen K=2', '2']]);
    const mean = (arm: string) => fig.runs.filter((r: any) => r.arm === arm).reduce((a: number, r: any) => a + r.auc / 2, 0);
    expect(Number(rows[0].auc_mean)).toBeCloseTo(mean('e2e K=2'), 9);
    const [json] = await downloadsOf(page, '[data-testid=paper-all-json]');
    expect(JSON.parse(json.body.toString('utf8')).runs).toHaveLength(4);
    await page.locator('[data-testid=paper-figures]').screenshot({ path: artifactPath('lab-paper-figures.png') });
  }, 600_000);
});

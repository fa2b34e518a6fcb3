// Helpers for the lab's browser tests: wait on the LabSession the page exposes as
// window.slideLab, read its figures, and fail with what the page said.
import { readFileSync } from 'node:fs';
import type { Browser, Download, Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { launch, watchPage } from '../tools/chromium.ts';

/** The browser, page and page log a lab spec shares across its tests. */
export interface LabBrowser {
  browser: Browser;
  page: Page;
  log: string[];
}

/** Launches Chromium with one 1280x1000 page whose console output is collected (a spec's beforeAll). */
export async function openLabBrowser(): Promise<LabBrowser> {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  return { browser, page, log: watchPage(page) };
}

/** Prints the page log's last `lines` lines (debug aside) and closes the browser (a spec's afterAll). */
export async function closeLabBrowser(b: Partial<LabBrowser>, lines: number): Promise<void> {
  if (b.log?.length) console.log(b.log.filter((l) => !l.startsWith('[debug]')).slice(-lines).join('\n'));
  await b.browser?.close();
}

/**
 * A spec file's lab browser: opened before its tests (`use` receives it) and closed after them,
 * printing the last `lines` lines of the page log.
 */
export function labBrowserHooks(use: (b: LabBrowser) => void, lines = 30): void {
  let b: LabBrowser | undefined;
  beforeAll(async () => use((b = await openLabBrowser())));
  afterAll(() => closeLabBrowser(b ?? {}, lines));
}

/** Waits until `fn(window.slideLab)` is truthy; on timeout, reports the lab's state and error. */
export async function waitLab(page: Page, fn: string, timeout = 120_000): Promise<void> {
  try {
    await page.waitForFunction(`(() => { const lab = window.slideLab; return Boolean(lab && (${fn})); })()`, null, { timeout, polling: 250 });
  } catch (e) {
    const info = await page.evaluate(() => {
      const lab = (window as any).slideLab;
      return lab ? { state: lab.state, error: lab.lastError, steps: lab.history.steps.length } : 'no lab';
    }).catch(() => 'page gone');
    throw new Error(`waiting for ${fn}: ${(e as Error).message.split('\n')[0]}; lab: ${JSON.stringify(info)}`);
  }
}

export interface LabFigures {
  state: string;
  error: { where: string; message: string } | null;
  losses: number[];
  steps: number[];
  slides: string[];
  evals: { epoch: number; auc: number; slides: number }[];
  ranks: { rank: number; backend: string; adapter: string | null; fallbackReason?: string }[];
  tilesPerSec: number;
  config: Record<string, unknown>;
  hash: string;
}

export function figures(page: Page): Promise<LabFigures> {
  return page.evaluate(() => {
    const lab = (window as any).slideLab;
    const m = lab.metricsJson();
    return {
      state: lab.state,
      error: lab.lastError,
      losses: lab.history.steps.map((s: any) => s.loss),
      steps: lab.history.steps.map((s: any) => s.step),
      slides: lab.history.steps.map((s: any) => s.slideId),
      evals: lab.history.evals.map((e: any) => ({ epoch: e.epoch, auc: e.auc, slides: e.slides.length })),
      ranks: lab.rankInfo.map((r: any) => ({ rank: r.rank, backend: r.backend, adapter: r.adapter ? [r.adapter.vendor, r.adapter.architecture].join(' ') : null, fallbackReason: r.fallbackReason })),
      tilesPerSec: m.summary.tilesPerSec,
      config: lab.config,
      hash: lab.hash,
    };
  });
}

/** Number of canvas pixels that are neither white nor transparent (a drawn heatmap has many). */
/**
 * Takes the checkpoint the resume banner offers and runs it to the end: reads the banner's step,
 * restores (the run must then hold exactly steps [0, step)), resumes and waits for done or error.
 * Returns the banner's step.
 */
export async function resumeFromBanner(page: Page, timeouts = { paused: 120_000, done: 180_000 }): Promise<number> {
  await page.waitForSelector('[data-testid=resume-banner]', { timeout: 60_000 });
  const at = Number(await page.locator('[data-testid=resume-step]').textContent());
  await waitLab(page, "lab.state === 'ready'", 60_000);
  await page.click('[data-testid=resume-run]');
  await waitLab(page, "lab.state === 'paused'", timeouts.paused);
  expect((await figures(page)).steps).toEqual(Array.from({ length: at }, (_, i) => i));
  await page.click('[data-testid=btn-resume]');
  await waitLab(page, "lab.state === 'done' || lab.state === 'error'", timeouts.done);
  return at;
}

export function paintedPixels(page: Page, testId: string): Promise<number> {
  return page.evaluate((id) => {
    const c = document.querySelector(`[data-testid="${id}"]`) as HTMLCanvasElement | null;
    if (!c || !c.width) return 0;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] > 245 && d[i + 1] > 245 && d[i + 2] > 245)) n++;
    return n;
  }, testId);
}

export { mean } from '../src/core/stats.ts';

/**
 * Clicks `selector` and waits until `started` holds. Vite's dev server reloads the page once when
 * a worker imports dependencies it had not optimised yet (the rank workers start on the first
 * click): then the page comes back idle, and the click is repeated (several times when a worker pulls in dependencies lazily; at most 5 retries).
 */
export async function clickSurvivingReload(page: Page, selector: string, started: string, timeout = 240_000): Promise<void> {
  for (let attempt = 0; attempt < 6; attempt++) {
    let reloaded = false;
    const onLoad = () => (reloaded = true);
    page.on('load', onLoad);
    try {
      await page.click(selector);
      const t0 = Date.now();
      for (;;) {
        if (reloaded) break;
        const ok = await page.evaluate(`(() => { const lab = window.slideLab; return Boolean(lab && (${started})); })()`).catch(() => false);
        if (ok) return;
        if (Date.now() - t0 > timeout) throw new Error(`waiting for ${started} after clicking ${selector}: timed out`);
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      page.off('load', onLoad);
    }
    console.log(`the page reloaded after clicking ${selector} (Vite optimised new dependencies); clicking again`);
    await waitLab(page, "lab.data && lab.state === 'ready'", 60_000);
  }
  throw new Error(`the page kept reloading after clicking ${selector}`);
}

export interface Downloaded {
  name: string;
  body: Buffer;
}

/** Clicks `selector` and collects the `count` downloads it starts (file name and contents). */
export async function downloadsOf(page: Page, selector: string, count = 1, timeout = 30_000): Promise<Downloaded[]> {
  const got: Download[] = [];
  let on: (d: Download) => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    on = (d) => {
      got.push(d);
      if (got.length === count) resolve();
    };
    page.on('download', on);
  });
  try {
    await page.click(selector);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([all, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${selector}: ${got.length} of ${count} downloads within ${timeout} ms`)), timeout)))]).finally(() => clearTimeout(timer));
  } finally {
    page.off('download', on);
  }
  return Promise.all(got.map(async (d) => ({ name: d.suggestedFilename(), body: readFileSync((await d.path())!) })));
}

/** CSV text -> rows of cells (the lab's CSVs quote only cells with a comma, quote or newline). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n') row.push(cell), rows.push(row), (row = []), (cell = '');
    else cell += c;
  }
  if (cell || row.length) row.push(cell), rows.push(row);
  return rows;
}

/** CSV text -> one record per data row, keyed by the header. */
export function csvRecords(text: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text);
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}

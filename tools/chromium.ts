// Shared by the browser tests (e2e/), the headless runner (scripts/) and the browser benchmark (bench/).
// Launches Debian's Chromium through playwright-core with WebGPU enabled. Never downloads a browser.
// SLIDE_LAB_GPU=1 selects flags for a real GPU (GPU CI); the default is SwiftShader's CPU adapter.
import { chromium, type Browser, type Page } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumArgs(gpu = process.env.SLIDE_LAB_GPU === '1'): string[] {
  const common = [
    '--no-sandbox',
    '--headless=new',
    '--enable-unsafe-webgpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ];
  return gpu
    ? [...common, '--enable-features=Vulkan', '--use-angle=vulkan', '--ignore-gpu-blocklist']
    : [...common, '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs() });
}

export function labUrl(path = '/'): string {
  const base = process.env.SLIDE_LAB_URL;
  if (!base) throw new Error('SLIDE_LAB_URL is not set: run browser tests through vitest.e2e.config.ts');
  return base + path;
}

/** Collects page errors and console output so a failing test says what the page said. */
export function watchPage(page: Page): string[] {
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  return log;
}

/** A test page opened in its own browser: close `browser` in afterAll. `log` is what the page said. */
export interface TestPage {
  browser: Browser;
  page: Page;
  log: string[];
}

/**
 * Launches Chromium, opens the lab page at `path` (e.g. '/bench/pages/kernels.html') and waits up to
 * `timeoutMs` for it to set body[data-ready="1"]. If the page never gets ready, closes the browser
 * and throws with what the page said.
 */
export async function openTestPage(path: string, timeoutMs: number): Promise<TestPage> {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const log = watchPage(page);
    try {
      await page.goto(labUrl(path));
      await page.waitForSelector('body[data-ready="1"]', { timeout: timeoutMs });
    } catch (e) {
      throw new Error(`${path} did not get ready: ${(e as Error).message}; page said:\n${log.join('\n')}`, { cause: e });
    }
    return { browser, page, log };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** Rejects if `p` has not settled after `ms`, with what the page said (`log`) in the message. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string, log: string[] = []): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms; page said:\n${log.join('\n')}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export const ARTIFACTS = 'artifacts/e2e';
export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return `${ARTIFACTS}/${name}`;
}

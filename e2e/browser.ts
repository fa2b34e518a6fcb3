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

export const ARTIFACTS = 'artifacts/e2e';
export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return `${ARTIFACTS}/${name}`;
}

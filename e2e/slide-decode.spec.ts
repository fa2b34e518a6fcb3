// Browser test: decode slide tiles in a Web Worker with the native path (JPEG rebuilt from
// JPEGTables + tile, createImageBitmap, OffscreenCanvas) and with geotiff's JS path; compare the
// pixels and print both throughputs. Fixtures come from scripts/make-fixtures.ts, served by Vite.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../scripts/make-fixtures.ts';
import { labUrl, launch, watchPage } from '../tools/chromium.ts';
import type { DecodeReport } from './pages/slide-decode.worker.ts';

let browser: Browser;
beforeAll(async () => {
  await ensureFixtures();
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

describe('slide tile decoding in a worker', () => {
  it('native and JS decoders agree on RGB and YCbCr JPEG tiles; prints tiles/s', async () => {
    const page = await browser.newPage();
    const log = watchPage(page);
    try {
      await page.goto(labUrl('/e2e/pages/slide-decode.html?passes=10'));
      await page.waitForFunction(() => window.__slideDecode || window.__slideDecodeError, null, { timeout: 240_000 });
      const error = await page.evaluate(() => window.__slideDecodeError ?? null);
      expect(error, `${error}\n${log.join('\n')}`).toBeNull();
      const reports = (await page.evaluate(() => window.__slideDecode)) as DecodeReport[];
      expect(reports.length).toBe(4);
      for (const r of reports) {
        console.log(
          `${r.file} (${r.photometric === 2 ? 'RGB' : 'YCbCr'} JPEG, ${r.tileSize} px, ${r.tiles} tiles): ` +
            `native ${r.nativeTilesPerSec.toFixed(0)} tiles/s, JS ${r.jsTilesPerSec.toFixed(0)} tiles/s in a Chromium worker; ` +
            `worst tile MAD ${r.madPerChannel.map((v) => v.toFixed(2)).join('/')}, max diff ${r.maxAbsDiff}, region MAD ${r.regionMad.toFixed(3)}` +
            (r.unmarkedMad === null ? '' : `; without Adobe marker ${r.unmarkedMad.toFixed(1)}`),
        );
        expect(r.nativeAvailable).toBe(true);
        expect(r.nativeError).toBeNull();
        expect(r.nativeDecoded).toBe(r.tiles * 10); // every timed tile went through the native path
        for (const v of r.madPerChannel) expect(v).toBeLessThan(1.5);
        expect(r.regionMad).toBeLessThan(1.5);
      }
      const svsRgb = reports.find((r) => r.file === 'svs-rgb.svs')!;
      expect(svsRgb.unmarkedMad).toBeGreaterThan(10); // Aperio RGB tiles decode wrongly without the marker
    } finally {
      await page.close();
    }
  });
});

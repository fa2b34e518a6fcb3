// Browser test: decode slide tiles in a Web Worker with the native path (JPEG rebuilt from
// JPEGTables + tile, createImageBitmap, OffscreenCanvas) and with geotiff's JS path; compare the
// pixels and print both throughputs. Fixtures come from scripts/make-fixtures.ts, served by Vite.
// Then the committed fixtures/slides (WebP, JPEG 2000 33003/33004/33005, separate planes) read in
// the page through the native decoder (WebP natively, the rest through its fallbacks) against the
// OpenSlide / libvips reference regions: lossless exact, lossy within a MAD of 3 per channel.
// And a handful of fuzzed slides read in a Web Worker: each ends with pixels or a SlideError
// naming the file, and the worker and the page survive.
import type { Browser } from 'playwright-core';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../scripts/make-fixtures.ts';
import { labUrl, launch, watchPage } from '../tools/chromium.ts';
import type { DecodeReport } from './pages/slide-decode.worker.ts';
import { mutants } from '../src/slide/testing/tiff-mutate.ts';

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

interface Ref { file: string; codec: string; lossless: boolean; level: number; x: number; y: number; w: number; h: number; ref: string }
interface PageResult { file: string; level: number; mad: number[]; max: number; native: number; fallback: number; lastError: string | null }

describe('new codecs in Chromium against the reference readers (fixtures/slides)', () => {
  it('WebP natively, JPEG 2000 and separate planes through the fallbacks: lossless exact, lossy MAD < 3', async () => {
    // Level-0 regions only (the Node test covers level 1 too): every codec, within the e2e time budget.
    const refs = (JSON.parse(readFileSync('fixtures/slides/refs.json', 'utf8')) as { refs: Ref[] }).refs.filter((r) => r.level === 0);
    const page = await browser.newPage();
    const log = watchPage(page);
    try {
      await page.goto(labUrl('/fixtures/slides/refs.json'));
      const results = (await page.evaluate(async (list: Ref[]) => {
        // A page-side import of the Vite-served modules (vitest would rewrite a literal import()).
        const load = new Function('m', 'return import(m)') as (m: string) => Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
        const { fromUrl } = await load('/src/slide/source.ts');
        const { createNativeDecoder } = await load('/src/slide/decode-native.ts');
        const out: PageResult[] = [];
        for (const r of list) {
          const decoder = createNativeDecoder();
          const slide = await fromUrl(`/fixtures/slides/${r.file}`, { decoder });
          const ours = (await slide.readRegion(r.level, r.x, r.y, r.w, r.h)).data as Uint8Array; // [h, w, 3]
          const png = await createImageBitmap(await (await fetch(`/fixtures/slides/${r.ref}`)).blob(), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
          const ctx = new OffscreenCanvas(r.w, r.h).getContext('2d')!;
          ctx.drawImage(png, 0, 0);
          const ref = ctx.getImageData(0, 0, r.w, r.h).data; // [h, w, 4]
          const sum = [0, 0, 0];
          let max = 0;
          for (let i = 0; i < r.w * r.h; i++) {
            for (let c = 0; c < 3; c++) {
              const d = Math.abs(ours[i * 3 + c] - ref[i * 4 + c]);
              sum[c] += d;
              if (d > max) max = d;
            }
          }
          out.push({ file: r.file, level: r.level, mad: sum.map((v) => v / (r.w * r.h)), max, native: decoder.stats.native, fallback: decoder.stats.fallback, lastError: decoder.stats.lastError });
          await slide.close();
        }
        return out;
      }, refs)) as PageResult[];
      expect(results.length).toBe(refs.length);
      for (const [i, res] of results.entries()) {
        const r = refs[i];
        console.log(`Chromium ${res.file} L${res.level} [${r.codec}]: MAD per channel ${res.mad.map((v) => v.toFixed(3)).join('/')}, max ${res.max}; tiles native ${res.native}, fallback ${res.fallback}`);
        if (r.lossless) expect(res.max, res.file).toBe(0);
        else for (const v of res.mad) expect(v, res.file).toBeLessThan(3);
        if (r.file.startsWith('webp')) {
          expect(res.native, `${res.file}: ${res.lastError}`).toBeGreaterThan(0); // WebP went through the browser's decoder
          expect(res.lastError).toBeNull();
        }
      }
    } catch (e) {
      console.log(log.join('\n'));
      throw e;
    } finally {
      await page.close();
    }
  });
});

describe('fuzzed slides in a Web Worker', () => {
  it('12 mutants end with pixels or a one-line SlideError naming the file; the worker and page survive', async () => {
    const seeds = readdirSync('fixtures/slides').filter((f) => /\.(svs|tiff)$/.test(f)).sort()
      .map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(`fixtures/slides/${f}`)) }));
    const list = mutants(seeds, 12, 7).map((m) => ({ name: m.name, detail: m.detail, b64: Buffer.from(m.bytes).toString('base64') }));
    const page = await browser.newPage();
    const log = watchPage(page);
    try {
      await page.goto(labUrl('/fixtures/slides/refs.json'));
      const results = (await page.evaluate(async (items) => {
        const o = location.origin;
        const code = `
          import { openSlide } from '${o}/src/slide/source.ts';
          import { blobByteSource } from '${o}/src/slide/byte-source.ts';
          import { createNativeDecoder } from '${o}/src/slide/decode-native.ts';
          self.onmessage = async (e) => {
            const out = [];
            for (const m of e.data) {
              const bytes = Uint8Array.from(atob(m.b64), (c) => c.charCodeAt(0));
              const t0 = performance.now();
              try {
                const slide = await openSlide(blobByteSource(new Blob([bytes]), m.name), { decoder: createNativeDecoder() });
                const l = slide.levels[0];
                await slide.readRegion(0, 0, 0, Math.min(l.width, 256), Math.min(l.height, 256));
                for (const a of slide.associated) if (a.decodable) await slide.readAssociated(a.kind);
                out.push({ name: m.name, outcome: 'pixels', message: '', ms: performance.now() - t0 });
              } catch (err) {
                out.push({ name: m.name, outcome: err && err.name === 'SlideError' ? err.code : 'CRASH', message: String(err && err.message || err), ms: performance.now() - t0 });
              }
            }
            self.postMessage(out);
          };`;
        const worker = new Worker(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })), { type: 'module' });
        try {
          return await new Promise((resolve, reject) => {
            worker.onmessage = (e) => resolve(e.data);
            worker.onerror = (e) => reject(new Error(`worker error: ${e.message}`));
            setTimeout(() => reject(new Error('worker did not answer within 240 s')), 240_000);
            worker.postMessage(items);
          });
        } finally {
          worker.terminate();
        }
      }, list)) as { name: string; outcome: string; message: string; ms: number }[];
      const counts = new Map<string, number>();
      for (const [i, r] of results.entries()) {
        counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
        console.log(`  ${list[i].detail} -> ${r.outcome}${r.message ? `: ${r.message.slice(0, 160)}` : ''}`);
        expect(r.outcome, `${r.name} (${list[i].detail}): ${r.message}`).not.toBe('CRASH');
        if (r.outcome !== 'pixels') {
          expect(r.message.startsWith(`${r.name}: `), r.message).toBe(true);
          expect(r.message).not.toMatch(/[\r\n]/);
        }
      }
      expect(await page.evaluate(() => 1 + 1)).toBe(2); // the page is alive
      console.log(`12 mutants in a Chromium worker: ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}; slowest ${Math.max(...results.map((r) => r.ms)).toFixed(0)} ms`);
    } catch (e) {
      console.log(log.join('\n'));
      throw e;
    } finally {
      await page.close();
    }
  });
});

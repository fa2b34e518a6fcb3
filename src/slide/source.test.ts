// SlideSource against generated fixtures (scripts/make-fixtures.ts): every format, pixels against
// a reference decoder (libvips through sharp) and against the scene the fixtures were made from.
import { openAsBlob, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../../scripts/make-fixtures.ts';
import { createJsDecoder } from './decode-js.ts';
import { SlideError } from './errors.ts';
import { fromPath } from './node-open.ts';
import { fromBlob, fromUrl, type SlideSource } from './source.ts';
import type { UrlByteSource } from './byte-source.ts';
import { downsampleRgb } from './testing/scene.ts';

let dir = '';
let scene: Uint8Array;
const W = 960, H = 720;
beforeAll(async () => {
  dir = await ensureFixtures();
  scene = new Uint8Array(readFileSync(`${dir}/scene.rgb`));
});

/** Mean absolute difference per channel of two RGB [n, 3] buffers. */
function mad(a: Uint8Array, b: Uint8Array): number[] {
  expect(a.length).toBe(b.length);
  const d = [0, 0, 0];
  for (let i = 0; i < a.length; i++) d[i % 3] += Math.abs(a[i] - b[i]);
  return d.map((v) => v / (a.length / 3));
}

async function sharpRef(file: string, page = 0): Promise<Uint8Array> {
  return new Uint8Array(await sharp(file, { page, failOn: 'none' }).removeAlpha().raw().toBuffer());
}

async function withSlide<T>(name: string, fn: (s: SlideSource) => Promise<T>): Promise<T> {
  const s = await fromPath(`${dir}/${name}`);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

describe('formats: levels, resolution and pixels', () => {
  const cases: { file: string; levels: number[]; mpp: number | null; compression: number; photometric: number; ref: 'sharp' | 'scene'; tol: number }[] = [
    { file: 'vips-pyramid.tiff', levels: [960, 480, 240], mpp: 0.5, compression: 7, photometric: 6, ref: 'sharp', tol: 1 },
    { file: 'bigtiff.tiff', levels: [960, 480, 240], mpp: 0.5, compression: 7, photometric: 2, ref: 'sharp', tol: 0.5 },
    { file: 'svs-rgb.svs', levels: [960, 240], mpp: 0.499, compression: 7, photometric: 2, ref: 'sharp', tol: 0.5 },
    { file: 'svs-ycbcr.svs', levels: [960, 240], mpp: 0.2627, compression: 7, photometric: 6, ref: 'sharp', tol: 1 },
    { file: 'ome-subifd.ome.tiff', levels: [960, 480, 240], mpp: 0.25, compression: 8, photometric: 2, ref: 'sharp', tol: 0 },
    { file: 'tiled-lzw.tiff', levels: [960], mpp: null, compression: 5, photometric: 2, ref: 'sharp', tol: 0 },
    { file: 'tiled-deflate.tiff', levels: [960], mpp: null, compression: 8, photometric: 2, ref: 'sharp', tol: 0 },
    { file: 'tiled-packbits.tiff', levels: [960], mpp: null, compression: 32773, photometric: 2, ref: 'sharp', tol: 0 },
    { file: 'tiled-none.tiff', levels: [960], mpp: null, compression: 1, photometric: 2, ref: 'sharp', tol: 0 },
    { file: 'tiled-zstd.tiff', levels: [960], mpp: null, compression: 50000, photometric: 2, ref: 'scene', tol: 0 },
    { file: 'strips-lzw.tiff', levels: [960], mpp: null, compression: 5, photometric: 2, ref: 'sharp', tol: 0 },
    { file: 'sparse-4g.tiff', levels: [960], mpp: null, compression: 7, photometric: 2, ref: 'scene', tol: 2 },
    // Aperio JPEG 2000 through OpenJPEG wasm (this libvips has no JPEG 2000: the scene is the reference).
    { file: 'jp2k-rgb.svs', levels: [960, 240], mpp: 0.499, compression: 33005, photometric: 2, ref: 'scene', tol: 0 },
    { file: 'jp2k-ycbcr.svs', levels: [960, 240], mpp: 0.499, compression: 33003, photometric: 6, ref: 'scene', tol: 0.1 },
    { file: 'jp2k-ycbcr-mct.svs', levels: [960, 240], mpp: 0.499, compression: 33003, photometric: 6, ref: 'scene', tol: 1 },
  ];
  for (const c of cases) {
    it(`${c.file}: level 0 matches ${c.ref === 'sharp' ? 'libvips' : 'the source scene'} (MAD <= ${c.tol})`, async () => {
      await withSlide(c.file, async (s) => {
        expect(s.levels.map((l) => l.width)).toEqual(c.levels);
        expect(s.levels.map((l) => l.downsample)).toEqual(c.levels.map((w) => 960 / w));
        expect(s.levels[0]).toMatchObject({ compression: c.compression, photometric: c.photometric, height: 720 });
        if (c.mpp === null) expect(s.mpp).toBeNull();
        else expect(s.mpp).toBeCloseTo(c.mpp, 6);
        const r = await s.readRegion(0, 0, 0, W, H);
        const ref = c.ref === 'sharp' ? await sharpRef(`${dir}/${c.file}`) : scene;
        const d = mad(r.data, ref);
        console.log(`${c.file}: MAD per channel vs ${c.ref} = ${d.map((v) => v.toFixed(3)).join(' / ')}`);
        for (const v of d) expect(v).toBeLessThanOrEqual(c.tol);
        // Every lossy path also stays close to the scene itself (JPEG at quality 85-90).
        for (const v of mad(r.data, scene)) expect(v).toBeLessThan(4);
      });
    });
  }

  it('RGB-JPEG and YCbCr-JPEG SVS tiles give the same colours', async () => {
    const rgb = await withSlide('svs-rgb.svs', (s) => s.readRegion(0, 100, 100, 400, 300));
    const ycc = await withSlide('svs-ycbcr.svs', (s) => s.readRegion(0, 100, 100, 400, 300));
    const d = mad(rgb.data, ycc.data);
    console.log(`svs RGB vs YCbCr tiles: MAD ${d.map((v) => v.toFixed(2)).join(' / ')}`);
    for (const v of d) expect(v).toBeLessThan(4);
  });

  it('OME SubIFD and SVS reduced levels hold the downsampled scene', async () => {
    const l1 = await withSlide('ome-subifd.ome.tiff', (s) => s.readRegion(1, 0, 0, 480, 360));
    expect(mad(l1.data, downsampleRgb(scene, W, H, 2).data)).toEqual([0, 0, 0]);
    const svsL1 = await withSlide('svs-rgb.svs', (s) => s.readRegion(1, 0, 0, 240, 180));
    for (const v of mad(svsL1.data, downsampleRgb(scene, W, H, 4).data)) expect(v).toBeLessThan(3);
  });

  it('big-endian files read correctly (geotiff 3.0.5 reads their offset tables wrongly)', async () => {
    const half = downsampleRgb(scene, W, H, 2).data;
    const raw = await withSlide('bigendian.tiff', async (s) => {
      expect(s.littleEndian).toBe(false);
      return s.readRegion(0, 0, 0, 480, 360);
    });
    expect(mad(raw.data, half)).toEqual([0, 0, 0]);
    const jpeg = await withSlide('bigendian-bigtiff.tiff', async (s) => {
      expect([s.littleEndian, s.bigTiff]).toEqual([false, true]);
      return s.readRegion(0, 0, 0, 480, 360);
    });
    for (const v of mad(jpeg.data, half)) expect(v).toBeLessThan(3);
  });
});

describe('structure and metadata', () => {
  it('classifies Aperio thumbnail, label and macro without mistaking them for levels', async () => {
    await withSlide('svs-rgb.svs', async (s) => {
      expect(s.associated.map((a) => [a.kind, a.width, a.height])).toEqual([['thumbnail', 120, 90], ['label', 120, 90], ['macro', 320, 240]]);
      expect(s.description?.endsWith('\0')).toBe(false);
      expect(s.mppSource).toBe('aperio');
      const label = await s.readAssociated('label');
      expect([label.width, label.height, label.data[0]]).toEqual([120, 90, 200]);
      const thumb = await s.readAssociated('thumbnail');
      for (const v of mad(thumb.data, downsampleRgb(scene, W, H, 8).data)) expect(v).toBeLessThan(4);
      const macro = await s.readAssociated('macro');
      for (const v of mad(macro.data, downsampleRgb(scene, W, H, 3).data)) expect(v).toBeLessThan(4);
    });
  });

  it('missing (zero-length) tiles read as white background', async () => {
    await withSlide('missing-tiles.svs', async (s) => {
      const hole = await s.readRegion(0, 240, 0, 240, 240); // stored tile 1: zero-length
      expect(hole.data.every((v) => v === 255)).toBe(true);
      const kept = await s.readRegion(0, 0, 0, W, 240); // tiles 0 and 2 present, 1 missing
      const sceneRows = scene.subarray(0, W * 240 * 3).slice();
      for (let y = 0; y < 240; y++) sceneRows.fill(255, (y * W + 240) * 3, (y * W + 480) * 3);
      for (const v of mad(kept.data, sceneRows)) expect(v).toBeLessThan(2);
    });
  });

  it('regions past the image edge read white; bad arguments are SlideErrors', async () => {
    await withSlide('vips-pyramid.tiff', async (s) => {
      const r = await s.readRegion(2, 200, 150, 100, 100);
      expect(r.data[(99 * 100 + 99) * 3]).toBe(255);
      await expect(s.readRegion(7, 0, 0, 10, 10)).rejects.toThrow(/no level 7/);
      await expect(s.readRegion(0, 0, 0, 0, 10)).rejects.toBeInstanceOf(SlideError);
    });
  });

  it('honours an aborted signal', async () => {
    await withSlide('vips-pyramid.tiff', async (s) => {
      const ac = new AbortController();
      ac.abort();
      await expect(s.readRegion(0, 0, 0, 512, 512, { signal: ac.signal })).rejects.toMatchObject({ code: 'aborted' });
    });
  });
});

describe('broken and unsupported files give one clear SlideError', () => {
  const cases: [string, string, RegExp][] = [
    ['missing.svs', 'not-found', /no such file/],
    ['empty.tiff', 'not-tiff', /empty file/],
    ['not-a-tiff.png', 'not-tiff', /not a TIFF/],
    ['truncated.tiff', 'truncated', /truncated/],
    ['corrupt-loop.tiff', 'corrupt', /IFD chain loops/],
    ['lerc.tiff', 'unsupported', /^unsupported compression LERC \(34887\)$/],
    ['absurd.tiff', 'absurd-dimensions', /absurd dimensions 2147483648x2147483648/],
  ];
  for (const [file, code, reason] of cases) {
    it(`${file}: ${code}`, async () => {
      const e = await fromPath(`${dir}/${file}`).then(() => null, (err: unknown) => err);
      expect(e).toBeInstanceOf(SlideError);
      expect((e as SlideError).file).toBe(`${dir}/${file}`);
      expect((e as SlideError).code).toBe(code);
      expect((e as SlideError).reason).toMatch(reason);
    });
  }
  it('a JPEG 2000 tile that is not a codestream fails the read as corrupt', async () => {
    await withSlide('jp2k-corrupt.svs', async (s) => {
      await expect(s.readRegion(0, 0, 0, 240, 240)).rejects.toMatchObject({ code: 'corrupt', reason: 'corrupt tile data (no JPEG 2000 codestream header)' });
    });
  });
  it('a JPEG 2000 codec that cannot load gives a clear unsupported error on the first such tile', async () => {
    const decoder = createJsDecoder({ loadJ2k: () => Promise.reject(new Error('WebAssembly.instantiate(): no wasm here')) });
    const s = await fromPath(`${dir}/jp2k-ycbcr.svs`, { decoder });
    try {
      const e = await s.readRegion(0, 0, 0, 100, 100).then(() => null, (err: unknown) => err);
      expect(e).toBeInstanceOf(SlideError);
      expect(e).toMatchObject({ code: 'unsupported', file: `${dir}/jp2k-ycbcr.svs`,
        reason: 'unsupported compression JPEG 2000 (33003): the JPEG 2000 decoder could not be loaded (WebAssembly.instantiate(): no wasm here)' });
    } finally {
      await s.close();
    }
  });
  it('corrupt tile data fails the read, not silently', async () => {
    await withSlide('corrupt-tile.tiff', async (s) => {
      await expect(s.readRegion(0, 0, 0, 240, 240)).rejects.toMatchObject({ code: 'corrupt', reason: expect.stringMatching(/corrupt tile data/) });
    });
  });
});

describe('sources: Blob and URL give the same pixels as a path', () => {
  let server: Server;
  let base = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      let bytes: Buffer;
      // /sloppy/...: answers every range with more than was asked (as HTTP caches may).
      const sloppy = (req.url ?? '').startsWith('/sloppy/');
      try {
        bytes = readFileSync(`${dir}/${decodeURIComponent(req.url ?? '').replace(/^\/(sloppy\/)?/, '')}`);
      } catch {
        res.writeHead(404).end();
        return;
      }
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      if (!m) return void res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      const start = Math.max(0, Number(m[1]) - (sloppy ? 7 : 0)), end = Math.min(Number(m[2]) + (sloppy ? 100 : 0), bytes.length - 1);
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}` }).end(bytes.subarray(start, end + 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('fromBlob reads without loading the whole file', async () => {
    const blob = await openAsBlob(`${dir}/svs-ycbcr.svs`);
    const s = await fromBlob(blob, { name: 'svs-ycbcr.svs' });
    const ref = await withSlide('svs-ycbcr.svs', (p) => p.readRegion(0, 50, 60, 300, 200));
    expect(mad((await s.readRegion(0, 50, 60, 300, 200)).data, ref.data)).toEqual([0, 0, 0]);
    expect(s.name).toBe('svs-ycbcr.svs');
  });

  it('fromUrl: tile tables once per level, then one range request per tile', async () => {
    const s = await fromUrl(`${base}/svs-rgb.svs`, { cacheTiles: 0 });
    const src = (s as unknown as { src: UrlByteSource }).src;
    const afterOpen = src.requests;
    await s.readRegion(0, 0, 0, 240, 240); // one stored tile, tables first
    const afterFirst = src.requests;
    await s.readRegion(0, 240, 0, 480, 240); // two more tiles
    expect(src.requests - afterFirst).toBe(2);
    expect(afterFirst - afterOpen).toBeLessThanOrEqual(3); // offsets + byte counts + the tile
    const ref = await withSlide('svs-rgb.svs', (p) => p.readRegion(0, 240, 0, 480, 240));
    expect(mad((await s.readRegion(0, 240, 0, 480, 240)).data, ref.data)).toEqual([0, 0, 0]);
    console.log(`fromUrl svs-rgb.svs: ${afterOpen} requests to open, ${afterFirst - afterOpen} for the first tile, 1 per tile after`);
    await expect(fromUrl(`${base}/nope.svs`)).rejects.toMatchObject({ code: 'not-found' });
  });

  it('fromUrl trusts Content-Range, not the request, when a server answers a wider range', async () => {
    const s = await fromUrl(`${base}/sloppy/svs-ycbcr.svs`);
    const ref = await withSlide('svs-ycbcr.svs', (p) => p.readRegion(0, 0, 0, W, H));
    expect(mad((await s.readRegion(0, 0, 0, W, H)).data, ref.data)).toEqual([0, 0, 0]);
  });
});

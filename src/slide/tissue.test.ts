import { describe, expect, it } from 'vitest';
import { boxBlur, isPen, otsu, tissueMaskOf } from './tissue.ts';
import { downsampleBox, resampleRect } from './resample.ts';

describe('tissue detection', () => {
  it('otsu splits a bimodal histogram between the modes', () => {
    const v = new Uint8Array(1000).map((_, i) => (i < 400 ? 60 + (i % 20) : 200 + (i % 30)));
    const t = otsu(v);
    expect(t).toBeGreaterThanOrEqual(79);
    expect(t).toBeLessThan(200);
  });
  it('box blur keeps constants and spreads an impulse', () => {
    expect(boxBlur(new Uint8Array(25).fill(9), 5, 5, 1).every((v) => v === 9)).toBe(true);
    const imp = new Uint8Array(49);
    imp[24] = 255;
    const b = boxBlur(imp, 7, 7, 1);
    expect(b[24]).toBeLessThan(255);
    expect(b[24 - 7 - 1]).toBeGreaterThan(0);
  });
  it('finds stained tissue, not background, grey dust or pen ink', () => {
    // [60, 80, 3]: background 242; tissue square (purple-brown) with a dense-nuclei patch, grey
    // square, green pen stripe, black pen stripe.
    const w = 80, h = 60;
    const rgb = new Uint8Array(w * h * 3).fill(242);
    const paint = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number]) => {
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) rgb.set(c.map((v, k) => v + ((x * 7 + y * 13 + k) % 11)), (y * w + x) * 3);
    };
    paint(10, 10, 40, 40, [170, 120, 150]);
    paint(50, 10, 70, 30, [150, 150, 150]);
    paint(50, 40, 78, 46, [40, 140, 60]);
    paint(5, 50, 45, 56, [22, 22, 26]);
    paint(15, 15, 25, 25, [60, 25, 100]);
    expect(isPen(40, 140, 60)).toBe(true);
    expect(isPen(30, 30, 34)).toBe(true);
    expect(isPen(170, 120, 150)).toBe(false);
    expect(isPen(60, 25, 100)).toBe(false); // hematoxylin-dense nuclei
    const { data, fraction } = tissueMaskOf(rgb, w, h);
    const at = (x: number, y: number) => data[y * w + x];
    expect(at(25, 25)).toBe(1);
    expect(at(5, 5)).toBe(0);
    expect(at(60, 20)).toBe(0); // grey: low saturation
    expect(at(64, 43)).toBe(0); // green pen
    expect(at(25, 53)).toBe(0); // black pen
    expect(at(20, 20)).toBe(1); // dense nuclei are tissue
    expect(fraction).toBeGreaterThan(0.15);
    expect(fraction).toBeLessThan(0.25);
  });
});

describe('resampling', () => {
  it('box downsampling averages blocks', () => {
    const rgb = new Uint8Array([0, 0, 0, 100, 100, 100, 50, 50, 50, 250, 250, 250]);
    expect(Array.from(downsampleBox(rgb, 2, 2, 2).data)).toEqual([100, 100, 100]);
  });
  it('resampleRect: identity at scale 1, area mean when shrinking, smooth when enlarging', () => {
    const w = 8, h = 8;
    const rgb = new Uint8Array(w * h * 3).map((_, i) => (Math.floor(i / 3) % w) * 30);
    expect(resampleRect(rgb, w, h, 0, 0, 8, 8, 8)).toEqual(rgb);
    const half = resampleRect(rgb, w, h, 0, 0, 8, 8, 4);
    expect(half[0]).toBe(15); // mean of 0 and 30
    const up = resampleRect(rgb, w, h, 2, 2, 2, 2, 4);
    expect(up[0]).toBeGreaterThanOrEqual(52);
    expect(up[0]).toBeLessThanOrEqual(60);
  });
});

describe('tissue detection on a slide without a pyramid', () => {
  it('reads a strided subset of blocks, not the whole level, and finds about the same tissue', async () => {
    const { ensureFixtures } = await import('../../scripts/make-fixtures.ts');
    const { fromPath } = await import('./node-open.ts');
    const { detectTissue } = await import('./tissue.ts');
    const dir = await ensureFixtures();
    const slide = await fromPath(`${dir}/tiled-none.tiff`); // 960 x 720, 128 px tiles, one level
    try {
      expect(slide.levels).toHaveLength(1);
      let pixels = 0;
      const counting = new Proxy(slide, {
        get(t, k) {
          if (k === 'readRegion') return (l: number, x: number, y: number, w: number, h: number, o?: object) => { pixels += w * h; return t.readRegion(l, x, y, w, h, o); };
          const v = Reflect.get(t, k);
          return typeof v === 'function' ? v.bind(t) : v;
        },
      });
      const full = await detectTissue(counting, { downsample: 8, maxBlocks: 1000 });
      const fullPixels = pixels;
      pixels = 0;
      const sampled = await detectTissue(counting, { downsample: 8, maxBlocks: 12 });
      expect(full.sampleStride).toBe(1);
      expect(fullPixels).toBe(960 * 720);
      expect(sampled.sampleStride).toBe(2);
      expect(pixels).toBeLessThanOrEqual((960 * 720) / 3); // 12 of 48 blocks
      expect([sampled.width, sampled.height]).toEqual([full.width, full.height]);
      expect(Math.abs(sampled.fraction - full.fraction)).toBeLessThan(0.1);
      let agree = 0;
      for (let i = 0; i < full.data.length; i++) agree += Number(full.data[i] === sampled.data[i]);
      expect(agree / full.data.length).toBeGreaterThan(0.75);
    } finally {
      await slide.close();
    }
  });
  it('a fixed gray threshold replaces Otsu', () => {
    const w = 20, h = 10;
    const rgb = new Uint8Array(w * h * 3).fill(242);
    for (let y = 0; y < h; y++) for (let x = 0; x < 10; x++) rgb.set([200, 150, 190], (y * w + x) * 3); // gray about 172
    expect(tissueMaskOf(rgb, w, h, { blurRadius: 0 }).fraction).toBeCloseTo(0.5, 5);
    expect(tissueMaskOf(rgb, w, h, { blurRadius: 0, threshold: 160 }).fraction).toBe(0); // darker than 160 only
    expect(tissueMaskOf(rgb, w, h, { blurRadius: 0, threshold: 160 }).threshold).toBe(160);
  });
});

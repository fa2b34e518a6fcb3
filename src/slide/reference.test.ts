// Our regions against the reference readers, on the committed fixtures/slides/ (made by
// scripts/golden/make_slide_refs.py: OpenSlide for the Aperio JPEG 2000 files and the tiled planar
// TIFF, libvips for WebP, JPEG 2000 33004 and the stripped planar TIFF). Lossless codecs must
// match exactly; lossy ones within a mean absolute difference of 3 per channel. Prints the
// per-file figures. The negative control: 33003 tiles taken as RGB are far off.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { createJsDecoder } from './decode-js.ts';
import { fromPath } from './node-open.ts';

const DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'fixtures', 'slides');

interface Ref { file: string; codec: string; lossless: boolean; reader: string; level: number; x: number; y: number; w: number; h: number; ref: string }
const { refs } = JSON.parse(readFileSync(join(DIR, 'refs.json'), 'utf8')) as { refs: Ref[] };

async function refPixels(r: Ref): Promise<Uint8Array> {
  const { data, info } = await sharp(join(DIR, r.ref)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([r.w, r.h, 3]);
  return new Uint8Array(data);
}

/** Mean absolute difference per channel and the largest difference. */
export function compare(a: Uint8Array, b: Uint8Array): { mad: [number, number, number]; max: number } {
  const sum = [0, 0, 0];
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum[i % 3] += d;
    if (d > max) max = d;
  }
  const n = a.length / 3;
  return { mad: [sum[0] / n, sum[1] / n, sum[2] / n], max };
}

describe('regions against OpenSlide / libvips (fixtures/slides)', () => {
  it.each(refs.map((r) => [`${r.file} level ${r.level}`, r] as const))('%s', async (_, r) => {
    const slide = await fromPath(join(DIR, r.file));
    try {
      const ours = await slide.readRegion(r.level, r.x, r.y, r.w, r.h);
      const { mad, max } = compare(ours.data, await refPixels(r));
      console.log(`${r.file} L${r.level} [${r.codec}] vs ${r.reader}: MAD per channel ${mad.map((v) => v.toFixed(3)).join('/')}, max ${max}`);
      if (r.lossless) expect(max).toBe(0);
      else for (const v of mad) expect(v).toBeLessThan(3);
    } finally {
      await slide.close();
    }
  });

  it('negative control: 33003 YCbCr taken as RGB is far from OpenSlide', async () => {
    const r = refs.find((x) => x.file === 'aperio-33003-ycbcr-mct.svs' && x.level === 0)!;
    const js = createJsDecoder();
    const slide = await fromPath(join(DIR, r.file), { decoder: (t, s) => js({ ...t, compression: 33005 }, s) });
    try {
      const { mad } = compare((await slide.readRegion(0, r.x, r.y, r.w, r.h)).data, await refPixels(r));
      console.log(`33003 decoded as RGB: MAD per channel ${mad.map((v) => v.toFixed(1)).join('/')}`);
      expect(Math.max(...mad)).toBeGreaterThan(20);
    } finally {
      await slide.close();
    }
  });
});

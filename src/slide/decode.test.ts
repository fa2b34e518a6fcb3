// The native-decode JPEG rebuild, checked in Node with libjpeg-turbo (sharp, the decoder family
// Chromium uses) against geotiff's JS decoder; the JS decoder's throughput in Node; and the
// JPEG 2000 colour rules (decode-j2k.ts) on the J2K fixtures.
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../../scripts/make-fixtures.ts';
import { createJsDecoder, type RawTile } from './decode-js.ts';
import { decodeJ2kTile, loadOpenJpeg, parseJ2kHeader } from './decode-j2k.ts';
import { ADOBE_RGB, rebuildJpeg } from './decode-native.ts';
import { fromPath } from './node-open.ts';

let dir = '';
beforeAll(async () => {
  dir = await ensureFixtures();
});

async function rawTiles(file: string): Promise<RawTile[]> {
  const s = await fromPath(`${dir}/${file}`);
  const l = s.levels[0];
  const tiles: RawTile[] = [];
  for (let ty = 0; ty < Math.ceil(l.height / l.tileHeight); ty++) {
    for (let tx = 0; tx < Math.ceil(l.width / l.tileWidth); tx++) tiles.push(await s.readRawTile(0, tx, ty));
  }
  await s.close();
  return tiles;
}

const contains = (hay: Uint8Array, needle: Uint8Array) => Buffer.from(hay).includes(Buffer.from(needle));
const mad = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

describe('JPEG rebuild for native decoders', () => {
  const cases: [string, number][] = [['svs-rgb.svs', 2], ['bigtiff.tiff', 2], ['svs-ycbcr.svs', 6], ['vips-pyramid.tiff', 6]];
  it.each(cases)('%s (photometric %i): libjpeg-turbo on the rebuilt JPEG matches the JS decoder', async (file, photometric) => {
    const js = createJsDecoder();
    const tiles = await rawTiles(file);
    expect(tiles[0].photometric).toBe(photometric);
    let worst = 0, unmarked = 0;
    for (const t of tiles) {
      const jpeg = rebuildJpeg(t.jpegTables, t.bytes, t.photometric);
      expect(contains(jpeg, ADOBE_RGB)).toBe(photometric === 2);
      const native = new Uint8Array(await sharp(jpeg).raw().toBuffer());
      worst = Math.max(worst, mad(native, await js(t)));
      if (photometric === 2) unmarked = Math.max(unmarked, mad(new Uint8Array(await sharp(rebuildJpeg(t.jpegTables, t.bytes, 2, { adobe: false })).raw().toBuffer()), native));
    }
    console.log(`${file}: worst tile MAD native-rebuild vs JS = ${worst.toFixed(3)}${photometric === 2 ? `; without the Adobe marker ${unmarked.toFixed(1)}` : ''}`);
    expect(worst).toBeLessThan(1.5);
    // Aperio-style ids 0,1,2 need the marker; libvips writes ids 'R','G','B', which decoders read as RGB anyway.
    if (file === 'svs-rgb.svs') expect(unmarked).toBeGreaterThan(10);
    if (file === 'bigtiff.tiff') expect(unmarked).toBe(0);
  });
});

describe('JPEG 2000 tiles (Aperio 33003 / 33005)', () => {
  it.each([
    ['jp2k-rgb.svs', 33005, 1],
    ['jp2k-ycbcr.svs', 33003, 0],
    ['jp2k-ycbcr-mct.svs', 33003, 1],
  ] as const)('%s: compression %i, codestream MCT %i', async (file, compression, mct) => {
    const tiles = await rawTiles(file);
    for (const t of tiles) {
      expect(t.compression).toBe(compression);
      const h = parseJ2kHeader(t.bytes);
      expect(h?.mct).toBe(mct);
      expect(h?.components).toEqual(Array(3).fill({ bits: 8, signed: false, dx: 1, dy: 1 }));
    }
  });

  it('33003 without MCT is YCbCr: converted to RGB (the raw components are far off)', async () => {
    const codec = await loadOpenJpeg();
    const ycc = (await rawTiles('jp2k-ycbcr.svs'))[5];
    const rgb = decodeJ2kTile(codec, ycc);
    const s = await fromPath(`${dir}/jp2k-rgb.svs`);
    const ref = await s.readRegion(0, 256, 256, 256, 256); // tile 5 of the 256 px grid, from the lossless RGB file
    await s.close();
    const converted = mad(rgb, ref.data);
    const raw = mad(decodeJ2kTile(codec, { ...ycc, compression: 33005 }), ref.data); // same codestream taken as RGB
    console.log(`33003 tile: MAD vs RGB ${converted.toFixed(3)} converted, ${raw.toFixed(1)} unconverted`);
    expect(converted).toBeLessThan(0.2);
    expect(raw).toBeGreaterThan(20);
  });
});

describe('JS decoder throughput in Node', () => {
  it('decodes 256 px JPEG tiles (prints tiles/s)', async () => {
    const tiles = await rawTiles('svs-ycbcr.svs');
    const js = createJsDecoder();
    await js(tiles[0]);
    const passes = 8;
    const t0 = performance.now();
    for (let p = 0; p < passes; p++) for (const t of tiles) await js(t);
    const perSec = (passes * tiles.length) / ((performance.now() - t0) / 1000);
    console.log(`JS decoder in Node: ${perSec.toFixed(0)} tiles/s (256x256 YCbCr 4:2:0 JPEG, 1 thread, ${passes * tiles.length} tiles)`);
    expect(perSec).toBeGreaterThan(5);
  });
});

// Generated cohorts for tests: pyramidal tiled TIFFs (uncompressed, so writing is fast and reading
// exact) of synthetic scenes at a chosen µm per pixel (Aperio MPP in the description, or none), and
// a manifest CSV beside them. Node only (writes files).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cutTiles, downsampleRgb, paintLesion, paintScene, randomBlob, rng, type Texture } from './scene.ts';
import { basicTags, layoutTiff, tiffBytes, type TiffImageSpec } from './tiff-writer.ts';

export interface TestSlideOptions {
  /** µm per level-0 pixel written into an Aperio description; null: the file says nothing. */
  mpp: number | null;
  /** Downsample factors of the levels after level 0 (e.g. [2, 4]; [] = no pyramid). */
  pyramid: number[];
  /** Stored tile side. */
  tile?: number;
}

/** A tiled TIFF of RGB [h, w, 3] with the given pyramid, as bytes. */
export function testSlideBytes(rgb: Uint8Array, w: number, h: number, o: TestSlideOptions): Uint8Array {
  const tile = o.tile ?? 128;
  const level = (data: Uint8Array, lw: number, lh: number, description?: string): TiffImageSpec => ({
    tiled: true,
    blocks: cutTiles(data, lw, lh, tile, tile),
    tags: basicTags({ width: lw, height: lh, compression: 1, photometric: 2, tileWidth: tile, tileHeight: tile, description }),
  });
  const description = o.mpp === null ? undefined : `Aperio Image Library v12.0.15 \r\n${w}x${h} [0,0 ${w}x${h}] (${tile}x${tile}) none|AppMag = ${Math.round(10 / o.mpp)}|MPP = ${o.mpp}`;
  const images = [level(rgb, w, h, description)];
  for (const f of o.pyramid) {
    const d = downsampleRgb(rgb, w, h, f);
    images.push(level(d.data, d.width, d.height));
  }
  return tiffBytes(layoutTiff(images));
}

/** A scene of tissue blobs, with lesions painted in when `positive`. RGB [h, w, 3]. */
export function testScene(texture: Texture, w: number, h: number, seed: number, positive = false): Uint8Array {
  const random = rng(seed);
  const blobs = [randomBlob(random, w * 0.35, h * 0.5, Math.min(w, h) * 0.3), randomBlob(random, w * 0.7, h * 0.5, Math.min(w, h) * 0.25)];
  const rgb = paintScene(w, h, blobs, texture);
  if (positive) for (let i = 0; i < 6; i++) paintLesion(rgb, w, h, Math.floor(w * (0.25 + 0.5 * random())), Math.floor(h * (0.35 + 0.3 * random())), Math.floor(Math.min(w, h) * 0.12), random);
  return rgb;
}

export interface TestCohortSlide {
  slide: string;
  label: 0 | 1;
  split: 'train' | 'val';
  file: string;
}

/**
 * Writes `count` slides (labels alternate, every fourth slide of each label in val) of w x h px at
 * `mpp` with a 2x and 4x pyramid into `dir`, and `manifest.csv` (slide,label,split,path). Returns the rows.
 */
export function writeTestCohort(dir: string, texture: Texture, o: { count: number; width: number; height: number; mpp: number; seed?: number }): TestCohortSlide[] {
  mkdirSync(dir, { recursive: true });
  const rows: TestCohortSlide[] = [];
  for (let i = 0; i < o.count; i++) {
    const label = (i % 2) as 0 | 1;
    const split = Math.floor(i / 2) % 4 === 3 ? 'val' : 'train';
    const slide = `case-${String(i).padStart(3, '0')}`;
    const file = `slides/${slide}.tiff`;
    mkdirSync(join(dir, 'slides'), { recursive: true });
    const rgb = testScene(texture, o.width, o.height, (o.seed ?? 1) * 1000 + i, label === 1);
    writeFileSync(join(dir, file), testSlideBytes(rgb, o.width, o.height, { mpp: o.mpp, pyramid: [2, 4] }));
    rows.push({ slide, label, split, file });
  }
  writeFileSync(join(dir, 'manifest.csv'), ['slide,label,split,path', ...rows.map((r) => `${r.slide},${r.label},${r.split},${r.file}`)].join('\n') + '\n');
  return rows;
}

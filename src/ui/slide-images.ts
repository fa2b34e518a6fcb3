// Pixels for the viewer, thumbnails and the attention gallery, read in the page with the
// project's slide reader (range requests for served files, the File itself for dropped ones)
// or painted by the synthetic tile source.
import { fromBlob, fromUrl, type SlideSource } from '../slide/source.ts';
import { SyntheticTiles } from '../core/tiles.ts';
import type { DataSet, SlideInfo } from '../lab/dataset.ts';

const sources = new Map<string, Promise<SlideSource>>();

export function openSource(s: SlideInfo): Promise<SlideSource> {
  const key = s.url ?? s.id;
  let p = sources.get(key);
  if (!p) {
    p = s.blob ? fromBlob(s.blob, { name: s.id }) : fromUrl(s.url!);
    p.catch(() => sources.delete(key));
    sources.set(key, p);
  }
  return p;
}

export function rgbToImageData(rgb: Uint8Array, w: number, h: number): ImageData {
  const out = new ImageData(w, h);
  for (let i = 0, j = 0; i < w * h; i++, j += 3) {
    out.data[i * 4] = rgb[j];
    out.data[i * 4 + 1] = rgb[j + 1];
    out.data[i * 4 + 2] = rgb[j + 2];
    out.data[i * 4 + 3] = 255;
  }
  return out;
}

/** The slide's smallest pyramid level (at most ~1024 px wide) as an image, with its scale to level 0. */
export async function thumbnail(s: SlideInfo): Promise<{ image: ImageData; scale: number }> {
  const src = await openSource(s);
  const level = [...src.levels].reverse().find((l) => l.width <= 1024) ?? src.levels[src.levels.length - 1];
  const w = Math.min(level.width, 2048), h = Math.min(level.height, 2048);
  const r = await src.readRegion(level.index, 0, 0, w, h);
  return { image: rgbToImageData(r.data, r.width ?? w, r.height ?? h), scale: level.width / src.levels[0].width };
}

const synth = new WeakMap<DataSet, SyntheticTiles>();

/** Tile `index` (engine tile index) as an image of about `size` px. */
export async function tileImage(data: DataSet, s: SlideInfo, index: number, size = 96): Promise<ImageData> {
  if (data.tileSpec.kind === 'synthetic') {
    let t = synth.get(data);
    if (!t) synth.set(data, (t = new SyntheticTiles(data.tileSpec.seed, data.tileSpec.slides, data.tileSpec.lesionFraction)));
    const px = await t.read(s.id, Int32Array.of(index), size);
    return rgbToImageData(px, size, size);
  }
  const src = await openSource(s);
  const r = s.grid!.rects;
  const [x, y, w, h] = [r[index * 4], r[index * 4 + 1], r[index * 4 + 2], r[index * 4 + 3]];
  const level = [...src.levels].reverse().find((l) => w / l.downsample >= size) ?? src.levels[0];
  const lw = Math.max(1, Math.round(w / level.downsample)), lh = Math.max(1, Math.round(h / level.downsample));
  const region = await src.readRegion(level.index, Math.round(x / level.downsample), Math.round(y / level.downsample), lw, lh);
  return rgbToImageData(region.data, lw, lh);
}

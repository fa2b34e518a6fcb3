// Worker for the decode e2e check: opens fixtures by URL (range requests), decodes every level-0
// tile with the native path (JPEG rebuilt + createImageBitmap) and with geotiff's JS path,
// compares them, times both, and reads a whole level through a native-decoder SlideSource.
import { createJsDecoder, type RawTile } from '../../src/slide/decode-js.ts';
import { createNativeDecoder, nativeDecodeAvailable, rebuildJpeg } from '../../src/slide/decode-native.ts';
import { fromUrl } from '../../src/slide/source.ts';

export interface DecodeRequest {
  base: string;
  files: string[];
  passes: number;
}

export interface DecodeReport {
  file: string;
  photometric: number;
  tileSize: number;
  tiles: number;
  nativeAvailable: boolean;
  /** Tiles the native decoder actually decoded natively (not by fallback) in the timed passes. */
  nativeDecoded: number;
  nativeError: string | null;
  nativeTilesPerSec: number;
  jsTilesPerSec: number;
  /** Native vs JS: worst per-tile mean absolute difference per channel, and the largest difference. */
  madPerChannel: number[];
  maxAbsDiff: number;
  /** Whole level 0 read through SlideSource with each decoder: mean absolute difference. */
  regionMad: number;
  /** Native decode of an RGB tile rebuilt without the Adobe marker vs JS (null for YCbCr). */
  unmarkedMad: number | null;
}

interface Scope { onmessage: ((e: MessageEvent<DecodeRequest>) => void) | null; postMessage(m: unknown): void }
const scope = self as unknown as Scope;

async function decodePlain(jpeg: Uint8Array, w: number, h: number): Promise<Uint8Array> {
  const bitmap = await createImageBitmap(new Blob([jpeg as BlobPart], { type: 'image/jpeg' }), { colorSpaceConversion: 'none' });
  const ctx = new OffscreenCanvas(w, h).getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  return new Uint8Array(w * h * 3).map((_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]);
}

const mad = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

async function run(url: string, file: string, passes: number): Promise<DecodeReport> {
  const slide = await fromUrl(url, { cacheTiles: 0 });
  const l = slide.levels[0];
  const raws: RawTile[] = [];
  for (let ty = 0; ty < Math.ceil(l.height / l.tileHeight); ty++) {
    for (let tx = 0; tx < Math.ceil(l.width / l.tileWidth); tx++) raws.push(await slide.readRawTile(0, tx, ty));
  }
  const native = createNativeDecoder();
  const js = createJsDecoder();
  await native(raws[0]);
  await js(raws[0]);
  native.stats.native = 0;
  const time = async (decode: (t: RawTile) => Promise<Uint8Array>) => {
    const t0 = performance.now();
    for (let p = 0; p < passes; p++) for (const t of raws) await decode(t);
    return (passes * raws.length) / ((performance.now() - t0) / 1000);
  };
  const nativeTilesPerSec = await time(native);
  const nativeDecoded = native.stats.native;
  const jsTilesPerSec = await time(js);
  const madPerChannel = [0, 0, 0];
  let maxAbsDiff = 0;
  for (const t of raws) {
    const a = await native(t), b = await js(t);
    const d = [0, 0, 0];
    for (let i = 0; i < a.length; i++) {
      const e = Math.abs(a[i] - b[i]);
      d[i % 3] += e;
      if (e > maxAbsDiff) maxAbsDiff = e;
    }
    d.forEach((v, c) => (madPerChannel[c] = Math.max(madPerChannel[c], v / (a.length / 3))));
  }
  const viaNative = await fromUrl(url, { decoder: createNativeDecoder() });
  const regionMad = mad((await viaNative.readRegion(0, 0, 0, l.width, l.height)).data, (await slide.readRegion(0, 0, 0, l.width, l.height)).data);
  let unmarkedMad: number | null = null;
  if (raws[0].photometric === 2) {
    const t = raws[0];
    unmarkedMad = mad(await decodePlain(rebuildJpeg(t.jpegTables, t.bytes, 2, { adobe: false }), t.width, t.height), await js(t));
  }
  return {
    file, photometric: l.photometric, tileSize: l.tileWidth, tiles: raws.length, nativeAvailable: nativeDecodeAvailable(),
    nativeDecoded, nativeError: native.stats.lastError, nativeTilesPerSec, jsTilesPerSec, madPerChannel, maxAbsDiff, regionMad, unmarkedMad,
  };
}

scope.onmessage = async (e) => {
  try {
    const reports: DecodeReport[] = [];
    for (const file of e.data.files) reports.push(await run(new URL(e.data.base + file, location.href).href, file, e.data.passes));
    scope.postMessage({ ok: true, reports });
  } catch (err) {
    scope.postMessage({ ok: false, error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) });
  }
};

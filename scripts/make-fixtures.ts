// Generates the slide test fixtures into .fixtures/slide/ (git-ignored), once per FIXTURE_VERSION:
// a libvips pyramid, Aperio-like SVS files (RGB and YCbCr JPEG tiles with shared JPEGTables),
// an OME-TIFF with SubIFD levels, BigTIFF, a sparse BigTIFF with tiles past 4 GiB, big-endian
// files, LZW/Deflate/ZSTD/PackBits/uncompressed and strip images, missing tiles, Aperio JPEG 2000
// (33005 RGB, 33003 YCbCr with and without the codestream's colour transform), and broken files.
// Usage: npx tsx scripts/make-fixtures.ts [--force]. Tests call ensureFixtures().
// `--reference-slides DIR` writes instead the small slides committed under fixtures/slides/ that
// are made with the project's own encoders (scripts/golden/make_slide_refs.py calls it; the 4:2:0
// JPEG 2000 variant runs Debian's `vips` per tile, the 4:2:2 one OpenJPEG's `opj_compress`).
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { deflateSync } from 'node:zlib';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { encodeJ2kRgb, encodeJ2kYcbcrNoMct, rgbToYcbcr } from '../src/slide/testing/j2k-encode.ts';
import { encodeJpeg, splitJpegTables, type JpegOptions } from '../src/slide/testing/jpeg-encode.ts';
import { paintScene, randomBlob, rng, downsampleRgb, cutTiles, type Texture } from '../src/slide/testing/scene.ts';
import { parseCli, usageExit } from '../tools/cli.ts';
import { basicTags, layoutTiff, tiffBytes, T, type TiffImageSpec, type TiffLayout } from '../src/slide/testing/tiff-writer.ts';

export const FIXTURE_VERSION = 8;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURE_DIR = join(ROOT, '.fixtures', 'slide');
export const TEXTURE_PATH = join(ROOT, 'public', 'textures', 'ihc.png');

export async function loadTexture(path = TEXTURE_PATH): Promise<Texture> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

/** The reference scene behind most fixtures: RGB [h, w, 3]. */
export function scene(texture: Texture, width: number, height: number, seed: number): Uint8Array {
  const random = rng(seed);
  const blobs = [randomBlob(random, width * 0.38, height * 0.5, Math.min(width, height) * 0.3), randomBlob(random, width * 0.72, height * 0.45, Math.min(width, height) * 0.22)];
  return paintScene(width, height, blobs, texture);
}

function jpegLevel(rgb: Uint8Array, w: number, h: number, tile: number, opts: JpegOptions): { tables: Uint8Array; blocks: Uint8Array[] } {
  let tables: Uint8Array = new Uint8Array(0);
  const blocks = cutTiles(rgb, w, h, tile, tile).map((t) => {
    const split = splitJpegTables(encodeJpeg(t, tile, tile, opts));
    tables = split.tables;
    return split.tile;
  });
  return { tables, blocks };
}

const APERIO = (w: number, h: number, tile: number, kind: string, mpp: number) =>
  `Aperio Image Library v12.0.15 \r\n${w}x${h} [0,0 ${w}x${h}] (${tile}x${tile}) ${kind} Q=90|AppMag = 20|StripeWidth = 2040|ScanScope ID = SS1234|MPP = ${mpp}`;

/** An Aperio-like SVS: level 0, thumbnail (JPEG strips), level 1 (4x), label (raw), macro (JPEG). */
function svs(base: Uint8Array, w: number, h: number, o: { tile: number; ycbcr: boolean; mpp: number }): TiffImageSpec[] {
  const opts: JpegOptions = o.ycbcr ? { quality: 90, ycbcr: true, subsample: true, componentIds: [1, 2, 3] } : { quality: 90, ycbcr: false, componentIds: [0, 1, 2] };
  const photometric = o.ycbcr ? 6 : 2;
  const kind = o.ycbcr ? 'JPEG/YCC' : 'JPEG/RGB';
  const level = (rgb: Uint8Array, lw: number, lh: number, description?: string): TiffImageSpec => {
    const { tables, blocks } = jpegLevel(rgb, lw, lh, o.tile, opts);
    return {
      tiled: true, blocks,
      tags: basicTags({ width: lw, height: lh, compression: 7, photometric, tileWidth: o.tile, tileHeight: o.tile, jpegTables: tables, description,
        ycbcrSubsampling: o.ycbcr ? [2, 2] : undefined }),
    };
  };
  const l1 = downsampleRgb(base, w, h, 4);
  const thumb = downsampleRgb(base, w, h, 8);
  const rows = 16;
  const strips: Uint8Array[] = [];
  for (let y = 0; y < thumb.height; y += rows) {
    const n = Math.min(rows, thumb.height - y);
    strips.push(encodeJpeg(thumb.data.subarray(y * thumb.width * 3, (y + n) * thumb.width * 3), thumb.width, n, { quality: 90, jfif: true }));
  }
  const label = new Uint8Array(120 * 90 * 3).map((_, i) => (i % 3 === 0 ? 200 : 40 + ((i >> 5) & 63)));
  const macro = downsampleRgb(base, w, h, 3);
  return [
    level(base, w, h, APERIO(w, h, o.tile, kind, o.mpp)),
    { tiled: false, blocks: strips, tags: basicTags({ width: thumb.width, height: thumb.height, compression: 7, photometric: 6, rowsPerStrip: rows,
      description: `Aperio Image Library v12.0.15 \r\n${w}x${h} -> ${thumb.width}x${thumb.height} - |AppMag = 20|MPP = ${o.mpp}` }) },
    level(l1.data, l1.width, l1.height, `Aperio Image Library v12.0.15 \r\n${w}x${h} -> ${l1.width}x${l1.height} - |AppMag = 20|MPP = ${o.mpp}`),
    { tiled: false, blocks: [label], tags: basicTags({ width: 120, height: 90, compression: 1, photometric: 2, rowsPerStrip: 90, subfileType: 1,
      description: 'Aperio Image Library v12.0.15\r\nlabel 120x90' }) },
    { tiled: false, blocks: [encodeJpeg(macro.data, macro.width, macro.height, { quality: 90, jfif: true })],
      tags: basicTags({ width: macro.width, height: macro.height, compression: 7, photometric: 6, rowsPerStrip: macro.height, subfileType: 9,
        description: `Aperio Image Library v12.0.15\r\nmacro ${macro.width}x${macro.height}` }) },
  ];
}

type J2kKind = 'rgb' | 'rgb-lossy' | 'ycbcr' | 'ycbcr-mct' | 'ycbcr-420' | 'ycbcr-422';

/** A bare JPEG 2000 codestream of RGB [h, w, 3] as libvips's jp2ksave writes it with 4:2:0 chroma (YCbCr, no MCT). */
async function vipsJ2k420(rgb: Uint8Array, w: number, h: number, work: string, i: number): Promise<Uint8Array> {
  const png = join(work, `t${i}.png`), jp2 = join(work, `t${i}.jp2`);
  writeFileSync(png, await pngOf(rgb, w, h));
  const r = spawnSync('vips', ['jp2ksave', png, jp2, '--Q', '85', '--subsample-mode', 'on'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vips jp2ksave failed (${r.error?.message ?? r.stderr}); install libvips-tools`);
  const file = readFileSync(jp2);
  for (let k = 0; k + 3 < file.length; k++) {
    if (file[k] === 0xff && file[k + 1] === 0x4f && file[k + 2] === 0xff && file[k + 3] === 0x51) return new Uint8Array(file.subarray(k));
  }
  throw new Error('no codestream in the jp2 file vips wrote');
}

/**
 * A bare JPEG 2000 codestream of RGB [h, w, 3] as JFIF YCbCr with 4:2:2 chroma (Cb and Cr
 * averaged over horizontal pairs: components 1x1, 2x1, 2x1), no MCT, lossy (9/7 wavelet, ratio
 * 10), coded by OpenJPEG's opj_compress (Debian libopenjp2-tools) from planar raw samples.
 */
function opjJ2k422(rgb: Uint8Array, w: number, h: number, work: string, i: number): Uint8Array {
  const ycc = rgbToYcbcr(rgb); // [h, w, 3]
  const cw = w / 2;
  const raw = new Uint8Array(w * h + 2 * cw * h); // planar: Y [h, w], Cb [h, w/2], Cr [h, w/2]
  for (let p = 0; p < w * h; p++) raw[p] = ycc[p * 3];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < cw; x++) {
      const a = (y * w + 2 * x) * 3, b = a + 3;
      raw[w * h + y * cw + x] = (ycc[a + 1] + ycc[b + 1] + 1) >> 1;
      raw[w * h + cw * h + y * cw + x] = (ycc[a + 2] + ycc[b + 2] + 1) >> 1;
    }
  }
  const input = join(work, `t${i}.raw`), output = join(work, `t${i}.j2k`);
  writeFileSync(input, raw);
  const r = spawnSync('opj_compress', ['-i', input, '-o', output, '-F', `${w},${h},3,8,u@1x1:2x1:2x1`, '-I', '-r', '10', '-mct', '0'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`opj_compress failed (${r.error?.message ?? r.stderr}); install libopenjp2-tools`);
  const cs = new Uint8Array(readFileSync(output));
  if (cs[0] !== 0xff || cs[1] !== 0x4f) throw new Error('opj_compress wrote no bare codestream');
  return cs;
}

/** PNG bytes of RGB [h, w, 3]. */
async function pngOf(rgb: Uint8Array, w: number, h: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
}

/**
 * An Aperio-like JPEG 2000 SVS: level 0 and level 1 (4x), `tile` px tiles (edge tiles padded, as
 * Aperio writes them). 'rgb': 33005, lossless with MCT; 'rgb-lossy': 33005 at ratio 12;
 * 'ycbcr': 33003, lossless YCbCr components without MCT; 'ycbcr-mct': 33003 whose YCbCr
 * components are coded with the (irreversible) MCT at ratio 12; 'ycbcr-420': 33003 with 4:2:0
 * chroma, coded by libvips (runs `vips`); 'ycbcr-422': 33003 with 4:2:2 chroma, coded by
 * opj_compress. OpenSlide reads every 33003 codestream as YCbCr.
 */
async function j2kSvs(base: Uint8Array, w: number, h: number, kind: J2kKind, tile: number): Promise<TiffImageSpec[]> {
  const compression = kind.startsWith('rgb') ? 33005 : 33003;
  const photometric = kind.startsWith('rgb') ? 2 : 6;
  const work = kind === 'ycbcr-420' || kind === 'ycbcr-422' ? mkdtempSync(join(tmpdir(), `j2k${kind.slice(-3)}-`)) : '';
  const level = async (rgb: Uint8Array, lw: number, lh: number, description: string): Promise<TiffImageSpec> => {
    const blocks: Uint8Array[] = [];
    for (const t of cutTiles(rgb, lw, lh, tile, tile)) {
      if (kind === 'rgb') blocks.push(await encodeJ2kRgb(t, tile, tile));
      else if (kind === 'rgb-lossy') blocks.push(await encodeJ2kRgb(t, tile, tile, { ratio: 12 }));
      else if (kind === 'ycbcr-mct') blocks.push(await encodeJ2kRgb(rgbToYcbcr(t), tile, tile, { ratio: 12 }));
      else if (kind === 'ycbcr-420') blocks.push(await vipsJ2k420(t, tile, tile, work, blocks.length));
      else if (kind === 'ycbcr-422') blocks.push(opjJ2k422(t, tile, tile, work, blocks.length));
      else blocks.push((await encodeJ2kYcbcrNoMct(rgbToYcbcr(t), tile, tile)).codestream);
    }
    return { tiled: true, blocks, tags: basicTags({ width: lw, height: lh, compression, photometric, tileWidth: tile, tileHeight: tile, description }) };
  };
  const l1 = downsampleRgb(base, w, h, 4);
  const kindName = compression === 33005 ? 'J2K/KDU' : 'J2K/YUV16';
  try {
    return [
      await level(base, w, h, APERIO(w, h, tile, kindName, 0.499)),
      await level(l1.data, l1.width, l1.height, `Aperio Image Library v12.0.15 \r\n${w}x${h} -> ${l1.width}x${l1.height} - |AppMag = 20|MPP = 0.499`),
    ];
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
}

/** Reference slides (320 x 240 scene, 128 px tiles) made with the project's encoders, for fixtures/slides/. */
export const REFERENCE_SLIDE_SIZE = { width: 320, height: 240, seed: 5 } as const;

/** Writes base.png (the scene) and the Aperio JPEG 2000 reference slides into `dir`. */
export async function makeReferenceSlides(dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const { width: W, height: H, seed } = REFERENCE_SLIDE_SIZE;
  const base = scene(await loadTexture(), W, H, seed);
  writeFileSync(join(dir, 'base.png'), await pngOf(base, W, H));
  const kinds: [string, J2kKind][] = [
    ['aperio-33005-rgb.svs', 'rgb-lossy'], ['aperio-33003-ycbcr.svs', 'ycbcr'],
    ['aperio-33003-ycbcr-mct.svs', 'ycbcr-mct'], ['aperio-33003-420.svs', 'ycbcr-420'], ['aperio-33003-422.svs', 'ycbcr-422'],
  ];
  for (const [name, kind] of kinds) writeFileSync(join(dir, name), tiffBytes(layoutTiff(await j2kSvs(base, W, H, kind, 128))));
  // Aperio JPEG (YCbCr, shared tables) with thumbnail strips, label and macro: the fuzz test's JPEG seed.
  writeFileSync(join(dir, 'aperio-jpeg.svs'), tiffBytes(layoutTiff(svs(base, W, H, { tile: 128, ycbcr: true, mpp: 0.499 }))));
  return ['base.png', ...kinds.map(([n]) => n), 'aperio-jpeg.svs'];
}

function omeXml(w: number, h: number, mpp: number): string {
  return `<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="slide">` +
    `<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="${w}" SizeY="${h}" SizeC="3" SizeZ="1" SizeT="1" ` +
    `PhysicalSizeX="${mpp * 1000}" PhysicalSizeXUnit="nm" PhysicalSizeY="${mpp * 1000}" PhysicalSizeYUnit="nm" Interleaved="true">` +
    `<Channel ID="Channel:0:0" SamplesPerPixel="3"/><TiffData IFD="0" PlaneCount="1"/></Pixels></Image></OME>`;
}

/** OME-TIFF: level 0 in IFD 0 with SubIFDs for 2x and 4x, Deflate + horizontal predictor. */
function omeSubIfd(base: Uint8Array, w: number, h: number): TiffImageSpec[] {
  const tile = 128;
  const deflated = (rgb: Uint8Array, lw: number, lh: number, description?: string): TiffImageSpec => {
    const blocks = cutTiles(rgb, lw, lh, tile, tile).map((t) => {
      const p = new Uint8Array(t.length); // horizontal differencing per row (TIFF predictor 2)
      for (let i = 0; i < t.length; i++) p[i] = i % (tile * 3) < 3 ? t[i] : (t[i] - t[i - 3]) & 255;
      return new Uint8Array(deflateSync(p));
    });
    const tags = basicTags({ width: lw, height: lh, compression: 8, photometric: 2, tileWidth: tile, tileHeight: tile, description });
    tags.push({ tag: 317, type: T.SHORT, value: [2] });
    return { tiled: true, blocks, tags };
  };
  const l1 = downsampleRgb(base, w, h, 2);
  const l2 = downsampleRgb(base, w, h, 4);
  const top = deflated(base, w, h, omeXml(w, h, 0.25));
  top.subIfds = [deflated(l1.data, l1.width, l1.height), deflated(l2.data, l2.width, l2.height)];
  for (const s of top.subIfds) s.tags.push({ tag: 254, type: T.LONG, value: [1] });
  return [top];
}

/** A ZSTD frame holding `data` in raw (stored) blocks: single segment, 4-byte content size. */
export function zstdRawFrame(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / 131072));
  const out = new Uint8Array(4 + 1 + 4 + blocks * 3 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xfd2fb528, true);
  out[4] = 0xa0; // FCS 4 bytes, single segment
  v.setUint32(5, data.length, true);
  let p = 9;
  for (let b = 0; b < blocks; b++) {
    const chunk = data.subarray(b * 131072, (b + 1) * 131072);
    const header = (chunk.length << 3) | (b === blocks - 1 ? 1 : 0); // raw block
    out[p] = header & 255; out[p + 1] = (header >> 8) & 255; out[p + 2] = (header >> 16) & 255;
    out.set(chunk, p + 3);
    p += 3 + chunk.length;
  }
  return out;
}

function rawTiled(rgb: Uint8Array, w: number, h: number, tile: number): TiffImageSpec {
  return { tiled: true, blocks: cutTiles(rgb, w, h, tile, tile), tags: basicTags({ width: w, height: h, compression: 1, photometric: 2, tileWidth: tile, tileHeight: tile }) };
}

function writeLayout(path: string, layout: TiffLayout): void {
  const fd = openSync(path, 'w');
  try {
    for (const { offset, bytes } of layout.pieces) writeSync(fd, bytes, 0, bytes.length, offset);
    ftruncateSync(fd, layout.size);
  } finally {
    closeSync(fd);
  }
}

/** Writes every fixture into `dir`. Returns the file names. */
export async function makeFixtures(dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const texture = await loadTexture();
  const W = 960, H = 720;
  const base = scene(texture, W, H, 11);
  const files: string[] = [];
  const put = (name: string, bytes: Uint8Array) => { writeFileSync(join(dir, name), bytes); files.push(name); };
  const raw = { raw: { width: W, height: H, channels: 3 as const } };
  writeFileSync(join(dir, 'scene.rgb'), base);
  // libvips pyramids (sharp): JPEG YCbCr tiles, 0.5 µm/px in the resolution tags.
  await sharp(base, raw).tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 85, tileWidth: 256, tileHeight: 256, xres: 2000, yres: 2000, resolutionUnit: 'cm' }).toFile(join(dir, 'vips-pyramid.tiff'));
  await sharp(base, raw).tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 90, tileWidth: 256, tileHeight: 256, bigtiff: true, xres: 2000, yres: 2000 }).toFile(join(dir, 'bigtiff.tiff'));
  for (const c of ['lzw', 'deflate', 'packbits', 'none'] as const) {
    await sharp(base, raw).tiff({ tile: true, compression: c, tileWidth: 128, tileHeight: 128, predictor: c === 'lzw' || c === 'deflate' ? 'horizontal' : 'none' }).toFile(join(dir, `tiled-${c}.tiff`));
  }
  await sharp(base, raw).tiff({ compression: 'lzw' }).toFile(join(dir, 'strips-lzw.tiff'));
  files.push('vips-pyramid.tiff', 'bigtiff.tiff', 'tiled-lzw.tiff', 'tiled-deflate.tiff', 'tiled-packbits.tiff', 'tiled-none.tiff', 'strips-lzw.tiff');
  // ZSTD: this sharp build has no ZSTD writer and Node 20 no zstd; frames of raw blocks are valid ZSTD.
  put('tiled-zstd.tiff', tiffBytes(layoutTiff([{ tiled: true, blocks: cutTiles(base, W, H, 128, 128).map(zstdRawFrame),
    tags: basicTags({ width: W, height: H, compression: 50000, photometric: 2, tileWidth: 128 }) }])));
  put('svs-rgb.svs', tiffBytes(layoutTiff(svs(base, W, H, { tile: 240, ycbcr: false, mpp: 0.499 }))));
  put('svs-ycbcr.svs', tiffBytes(layoutTiff(svs(base, W, H, { tile: 256, ycbcr: true, mpp: 0.2627 }))));
  put('ome-subifd.ome.tiff', tiffBytes(layoutTiff(omeSubIfd(base, W, H))));
  // Big-endian: many 16 px tiles, so the offset tables lie outside the IFD's first slice.
  const small = downsampleRgb(base, W, H, 2);
  put('bigendian.tiff', tiffBytes(layoutTiff([rawTiled(small.data, small.width, small.height, 16)], { littleEndian: false })));
  const beJpeg = jpegLevel(small.data, small.width, small.height, 16, { quality: 90, ycbcr: true });
  put('bigendian-bigtiff.tiff', tiffBytes(layoutTiff([{ tiled: true, blocks: beJpeg.blocks, tags: basicTags({ width: small.width, height: small.height, compression: 7, photometric: 6, tileWidth: 16, jpegTables: beJpeg.tables }) }], { littleEndian: false, bigTiff: true })));
  // Sparse BigTIFF: the tile data starts past 4 GiB (the file occupies a few kB on disk).
  const sparse = jpegLevel(base, W, H, 256, { quality: 90, ycbcr: false, componentIds: [0, 1, 2] });
  writeLayout(join(dir, 'sparse-4g.tiff'), layoutTiff([{ tiled: true, blocks: sparse.blocks, tags: basicTags({ width: W, height: H, compression: 7, photometric: 2, tileWidth: 256, jpegTables: sparse.tables }) }], { bigTiff: true, dataOffset: 2 ** 32 + 4096 }));
  files.push('sparse-4g.tiff');
  // Missing tiles: every third tile zero-length.
  const holes = jpegLevel(base, W, H, 240, { quality: 90, ycbcr: false, componentIds: [0, 1, 2] });
  put('missing-tiles.svs', tiffBytes(layoutTiff([{ tiled: true, blocks: holes.blocks.map((b, i) => (i % 3 === 1 ? new Uint8Array(0) : b)),
    tags: basicTags({ width: W, height: H, compression: 7, photometric: 2, tileWidth: 240, jpegTables: holes.tables, description: APERIO(W, H, 240, 'JPEG/RGB', 0.5) }) }])));
  // Broken files.
  const pyramid = readFileSync(join(dir, 'vips-pyramid.tiff'));
  put('truncated.tiff', pyramid.subarray(0, Math.floor(pyramid.length * 0.6)));
  const svsBytes = readFileSync(join(dir, 'svs-rgb.svs'));
  put('truncated-data.svs', svsBytes.subarray(0, Math.floor(svsBytes.length * 0.6))); // IFDs intact, tiles cut
  const badTile = tiffBytes(layoutTiff([{ tiled: true, blocks: holes.blocks.map((b) => b.map((v, i) => (i > 200 ? (v * 7 + i) & 255 : v))),
    tags: basicTags({ width: W, height: H, compression: 7, photometric: 2, tileWidth: 240, jpegTables: holes.tables }) }]));
  put('corrupt-tile.tiff', badTile);
  const loop = tiffBytes(layoutTiff([rawTiled(small.data, small.width, small.height, 64), rawTiled(small.data, small.width, small.height, 64)]));
  const lv = new DataView(loop.buffer);
  const ifd1 = lv.getUint32(4, true);
  lv.setUint32(ifd1 + 2 + lv.getUint16(ifd1, true) * 12, ifd1, true); // the first IFD points back to itself
  put('corrupt-loop.tiff', loop);
  // Aperio JPEG 2000 (decoded through OpenJPEG wasm); a 33003 tile that is not a codestream.
  put('jp2k-rgb.svs', tiffBytes(layoutTiff(await j2kSvs(base, W, H, 'rgb', 240))));
  put('jp2k-ycbcr.svs', tiffBytes(layoutTiff(await j2kSvs(base, W, H, 'ycbcr', 256))));
  put('jp2k-ycbcr-mct.svs', tiffBytes(layoutTiff(await j2kSvs(base, W, H, 'ycbcr-mct', 240))));
  put('jp2k-corrupt.svs', tiffBytes(layoutTiff([{ tiled: true, blocks: holes.blocks.map((b) => b.subarray(0, 64)),
    tags: basicTags({ width: W, height: H, compression: 33003, photometric: 6, tileWidth: 240, description: APERIO(W, H, 240, 'J2K/YUV16', 0.5) }) }])));
  // A compression no decoder here handles (LERC).
  put('lerc.tiff', tiffBytes(layoutTiff([{ tiled: true, blocks: holes.blocks.map((b) => b.subarray(0, 64)),
    tags: basicTags({ width: W, height: H, compression: 34887, photometric: 2, tileWidth: 240 }) }])));
  const absurd = basicTags({ width: 2 ** 31, height: 2 ** 31, compression: 7, photometric: 2, tileWidth: 256 });
  put('absurd.tiff', tiffBytes(layoutTiff([{ tiled: true, blocks: [new Uint8Array(16)], tags: absurd }])));
  put('not-a-tiff.png', new Uint8Array(await sharp(small.data, { raw: { width: small.width, height: small.height, channels: 3 } }).png().toBuffer()));
  put('empty.tiff', new Uint8Array(0));
  return files;
}

/** Generates the fixtures once (cached by version; safe when test files race) and returns their folder. */
export async function ensureFixtures(dir = FIXTURE_DIR, force = false): Promise<string> {
  const stamp = join(dir, 'stamp.json');
  const want = JSON.stringify({ version: FIXTURE_VERSION });
  if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return dir;
  const lock = `${dir}.lock`;
  mkdirSync(dirname(dir), { recursive: true });
  for (let waited = 0; ; waited += 200) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch {
      if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return dir;
      if (waited > 120_000 || (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 180_000)) rmSync(lock, { force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    await makeFixtures(tmp);
    writeFileSync(join(tmp, 'stamp.json'), want);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return dir;
  } finally {
    rmSync(lock, { force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const usage = 'usage: npm run fixtures -- [--force] [--reference-slides DIR]\nWrites the generated slide fixtures (vendor look-alikes, codecs, odd layouts) the slide tests read; --force rebuilds them.\n--reference-slides DIR writes the Aperio JPEG 2000 reference slides and base.png for fixtures/slides/ instead (scripts/golden/make_slide_refs.py).';
  const { values, positionals } = parseCli(process.argv.slice(2), { force: { type: 'boolean' }, 'reference-slides': { type: 'string' } }, usage);
  if (positionals.length) usageExit(`unexpected argument '${positionals[0]}'`, usage);
  const t0 = performance.now();
  if (values['reference-slides']) {
    const files = await makeReferenceSlides(resolve(String(values['reference-slides'])));
    console.log(`reference slides: ${files.join(', ')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    process.exit(0);
  }
  const dir = await ensureFixtures(FIXTURE_DIR, Boolean(values.force));
  console.log(`fixtures in ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

// Walks a TIFF's IFDs with geotiff's parser and summarises each one. Works around two geotiff
// 3.0.5 limits: the IFD chain is walked here (with a loop guard) and SubIFDs (OME-TIFF pyramids)
// are followed; array tags outside the first IFD slice (tile offset tables) are read here with the
// file's own byte order, because geotiff's DeferredArray always reads them little-endian
// (geotiff.js#535). For big-endian files the parser is also switched to eager loading so that
// geotiff never takes that path. Before geotiff parses an IFD, its entries are checked here: an
// entry count or a tag's value count that could not fit in the file (or over the limits in
// limits.ts) is refused before anything is allocated for it.
import type GeoTIFF from 'geotiff';
import type { ImageFileDirectory } from 'geotiff';
import { readExact, type ByteSource } from './byte-source.ts';
import { SlideError, throwIfAborted } from './errors.ts';
import { checkClaim, MAX_IFD_ENTRIES, MAX_TAG_BYTES } from './limits.ts';

export const TAG = {
  NewSubfileType: 254, ImageWidth: 256, ImageLength: 257, BitsPerSample: 258, Compression: 259,
  Photometric: 262, ImageDescription: 270, StripOffsets: 273, SamplesPerPixel: 277, RowsPerStrip: 278,
  StripByteCounts: 279, XResolution: 282, YResolution: 283, PlanarConfiguration: 284, ResolutionUnit: 296,
  Predictor: 317, TileWidth: 322, TileLength: 323, TileOffsets: 324, TileByteCounts: 325, SubIFDs: 330,
  ExtraSamples: 338, SampleFormat: 339, JPEGTables: 347, YCbCrSubSampling: 530,
} as const;

/** What one IFD holds, with its tile tables still unread. */
export interface IfdInfo {
  /** Byte offset of the IFD: a stable id. */
  offset: number;
  /** Position in the main chain, or -1 for a SubIFD. */
  chainIndex: number;
  /** Chain index of the IFD whose SubIFDs tag points here, or -1. */
  parentIndex: number;
  width: number;
  height: number;
  tiled: boolean;
  /** Tile size, or (width, rows per strip) for strip images. */
  tileWidth: number;
  tileHeight: number;
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  bitsPerSample: number[];
  planarConfiguration: number;
  predictor: number;
  newSubfileType: number;
  description: string | null;
  /** Pixels per unit [x, y] from XResolution/YResolution, and the unit (1 none, 2 inch, 3 cm). */
  resolution: [number, number] | null;
  resolutionUnit: number;
  fd: ImageFileDirectory;
}

interface DeferredArrayLike { arrayOffset: number; fieldType: number; length: number }

const MAX_IFDS = 4096;

function num(v: unknown, fallback = 0): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object' && 'length' in v && (v as ArrayLike<number>).length > 0) return Number((v as ArrayLike<number>)[0]);
  return fallback;
}

function rational(v: unknown): number | null {
  if (v && typeof v === 'object' && 'length' in v) {
    const a = v as ArrayLike<number>;
    if (a.length >= 2 && a[1] !== 0) return a[0] / a[1];
  }
  return typeof v === 'number' ? v : null;
}

/** Reads an array-valued tag with the file's byte order. [count] numbers (offsets are exact to 2^53). */
export async function loadArray(src: ByteSource, littleEndian: boolean, fd: ImageFileDirectory, tag: number, signal?: AbortSignal): Promise<number[]> {
  const deferred = fd.deferredArrays.get(tag) as unknown as DeferredArrayLike | undefined;
  if (!deferred) {
    const v: unknown = fd.deferredFields.has(tag) ? await fd.loadValue(tag) : fd.getValue(tag as never);
    if (v === undefined || v === null) return [];
    if (typeof v === 'number' || typeof v === 'bigint') return [Number(v)];
    return Array.from(v as ArrayLike<number>, Number);
  }
  const size = ({ 1: 1, 2: 1, 3: 2, 4: 4, 7: 1, 8: 2, 9: 4, 13: 4, 16: 8, 17: 8, 18: 8 } as Record<number, number>)[deferred.fieldType];
  if (!size) throw new SlideError(src.name, `corrupt file (tag ${tag} has field type ${deferred.fieldType})`);
  checkClaim(src.name, `tag ${tag} (${deferred.length} values)`, size * deferred.length, MAX_TAG_BYTES);
  const bytes = await readExact(src, deferred.arrayOffset, size * deferred.length, `tag ${tag} table`, signal);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(deferred.length);
  for (let i = 0; i < deferred.length; i++) {
    const at = i * size;
    out[i] = size === 1 ? view.getUint8(at) : size === 2 ? view.getUint16(at, littleEndian) : size === 4 ? view.getUint32(at, littleEndian)
      : Number(view.getBigUint64(at, littleEndian));
  }
  return out;
}

async function summarise(src: ByteSource, tiff: GeoTIFF, fd: ImageFileDirectory, offset: number, chainIndex: number, parentIndex: number): Promise<IfdInfo> {
  const get = (tag: number): unknown => (fd.deferredFields.has(tag) || fd.deferredArrays.has(tag) ? undefined : fd.getValue(tag as never));
  const tiled = fd.hasTag(TAG.TileOffsets);
  const width = num(get(TAG.ImageWidth));
  const height = num(get(TAG.ImageLength));
  const spp = num(get(TAG.SamplesPerPixel), 1);
  let bits = fd.hasTag(TAG.BitsPerSample) ? await loadArray(src, tiff.littleEndian, fd, TAG.BitsPerSample) : [1];
  if (bits.length === 1 && spp > 1) bits = new Array<number>(spp).fill(bits[0]);
  const rowsPerStrip = num(get(TAG.RowsPerStrip), height) || height;
  let description: string | null = null;
  if (fd.hasTag(TAG.ImageDescription)) {
    const d: unknown = await fd.loadValue(TAG.ImageDescription);
    description = typeof d === 'string' ? d.replace(/\0+$/, '') : null;
  }
  const xr = rational(get(TAG.XResolution));
  const yr = rational(get(TAG.YResolution));
  return {
    offset, chainIndex, parentIndex, width, height, tiled,
    tileWidth: tiled ? num(get(TAG.TileWidth)) : width,
    tileHeight: tiled ? num(get(TAG.TileLength)) : Math.min(rowsPerStrip, height),
    compression: num(get(TAG.Compression), 1),
    photometric: num(get(TAG.Photometric), spp >= 3 ? 2 : 1),
    samplesPerPixel: spp,
    bitsPerSample: bits,
    planarConfiguration: num(get(TAG.PlanarConfiguration), 1),
    predictor: num(get(TAG.Predictor), 1),
    newSubfileType: num(get(TAG.NewSubfileType), 0),
    description,
    resolution: xr !== null ? [xr, yr ?? xr] : null,
    resolutionUnit: num(get(TAG.ResolutionUnit), 2),
    fd,
  };
}

/** Bytes per value of each TIFF field type. */
const FIELD_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

/**
 * Checks the IFD at `offset` before geotiff parses it: the entry table lies inside the file, it
 * has at most MAX_IFD_ENTRIES entries, every field type is known, and no tag declares more value
 * bytes than the file holds (or than MAX_TAG_BYTES).
 */
export async function checkIfd(src: ByteSource, offset: number, littleEndian: boolean, bigTiff: boolean, signal?: AbortSignal): Promise<void> {
  const countSize = bigTiff ? 8 : 2, entrySize = bigTiff ? 20 : 12, inline = bigTiff ? 8 : 4;
  const head = await readExact(src, offset, countSize, `IFD at byte ${offset}`, signal);
  const hv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const entries = bigTiff ? Number(hv.getBigUint64(0, littleEndian)) : hv.getUint16(0, littleEndian);
  if (entries > MAX_IFD_ENTRIES) throw new SlideError(src.name, `corrupt file (IFD at byte ${offset} claims ${entries} entries, limit ${MAX_IFD_ENTRIES})`);
  const table = await readExact(src, offset + countSize, entries * entrySize + (bigTiff ? 8 : 4), `IFD at byte ${offset}`, signal);
  const v = new DataView(table.buffer, table.byteOffset, table.byteLength);
  for (let e = 0; e < entries; e++) {
    const at = e * entrySize;
    const tag = v.getUint16(at, littleEndian);
    const type = v.getUint16(at + 2, littleEndian);
    const count = bigTiff ? Number(v.getBigUint64(at + 4, littleEndian)) : v.getUint32(at + 4, littleEndian);
    const size = FIELD_SIZE[type];
    if (!size) throw new SlideError(src.name, `corrupt file (tag ${tag} in the IFD at byte ${offset} has unknown field type ${type})`);
    const bytes = size * count;
    if (bytes <= inline) continue;
    const valueAt = bigTiff ? Number(v.getBigUint64(at + 12, littleEndian)) : v.getUint32(at + 8, littleEndian);
    if (src.size !== null && (bytes > src.size || valueAt + bytes > src.size)) {
      throw new SlideError(src.name, `truncated or corrupt file (tag ${tag} declares ${count} values, ${bytes} bytes at byte ${valueAt}, past the end of the ${src.size}-byte file)`, 'truncated');
    }
    checkClaim(src.name, `tag ${tag} (${count} values)`, bytes, MAX_TAG_BYTES);
  }
}

/** All IFDs: the main chain in order, each followed by its SubIFDs. */
export async function walkIfds(src: ByteSource, tiff: GeoTIFF, signal?: AbortSignal): Promise<IfdInfo[]> {
  const parser = tiff.parser as unknown as { eager: boolean; parseFileDirectoryAt(o: number): Promise<ImageFileDirectory> };
  if (!tiff.littleEndian) parser.eager = true; // geotiff.js#535: never let geotiff read BE arrays lazily
  const seen = new Set<number>();
  const out: IfdInfo[] = [];
  const parseAt = async (offset: number): Promise<ImageFileDirectory> => {
    if (seen.has(offset)) throw new SlideError(src.name, `corrupt file (IFD chain loops back to byte ${offset})`);
    if (seen.size >= MAX_IFDS) throw new SlideError(src.name, `corrupt file (more than ${MAX_IFDS} IFDs)`);
    if (offset < 8 || (src.size !== null && offset >= src.size)) {
      throw new SlideError(src.name, `truncated or corrupt file (IFD at byte ${offset}, file has ${src.size ?? '?'} bytes)`, 'truncated');
    }
    seen.add(offset);
    throwIfAborted(signal, src.name);
    await checkIfd(src, offset, tiff.littleEndian, tiff.bigTiff, signal);
    return parser.parseFileDirectoryAt(offset);
  };
  let offset = tiff.firstIFDOffset;
  for (let chainIndex = 0; offset !== 0; chainIndex++) {
    const fd = await parseAt(offset);
    out.push(await summarise(src, tiff, fd, offset, chainIndex, -1));
    if (fd.hasTag(TAG.SubIFDs)) {
      for (const sub of await loadArray(src, tiff.littleEndian, fd, TAG.SubIFDs, signal)) {
        out.push(await summarise(src, tiff, await parseAt(sub), sub, -1, chainIndex));
      }
    }
    offset = fd.nextIFDByteOffset;
  }
  return out;
}

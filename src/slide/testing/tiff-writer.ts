// A small TIFF writer for test fixtures: classic or BigTIFF, little- or big-endian, tiled or
// stripped IFDs, SubIFDs (OME-TIFF pyramids), any tags, and tile data placed at a chosen offset
// (a sparse file with tiles past 4 GiB). Output is a list of byte pieces at file offsets.

export const T = { BYTE: 1, ASCII: 2, SHORT: 3, LONG: 4, RATIONAL: 5, UNDEFINED: 7, DOUBLE: 12, IFD: 13, LONG8: 16, IFD8: 18 } as const;
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 12: 8, 13: 4, 16: 8, 18: 8 };

export interface TiffTag {
  tag: number;
  type: number;
  /** Numbers (a RATIONAL takes two: numerator, denominator), bytes, or an ASCII string. */
  value: number[] | Uint8Array | string;
}

export interface TiffImageSpec {
  /** Tags besides the tile/strip offset and byte-count tables, which the writer adds. */
  tags: TiffTag[];
  tiled: boolean;
  /** Tile or strip data in storage order; a zero-length block becomes a missing tile. */
  blocks: Uint8Array[];
  subIfds?: TiffImageSpec[];
}

export interface TiffLayout {
  size: number;
  pieces: { offset: number; bytes: Uint8Array }[];
}

export interface WriteOptions {
  littleEndian?: boolean;
  bigTiff?: boolean;
  /** Put tile data from this file offset on (default: right after the IFDs). */
  dataOffset?: number;
}

function valueBytes(t: TiffTag): { count: number; bytes: Uint8Array; le: (v: DataView, le: boolean) => void } {
  if (typeof t.value === 'string') {
    const b = new TextEncoder().encode(t.value + '\0');
    return { count: b.length, bytes: b, le: () => undefined };
  }
  if (t.value instanceof Uint8Array) return { count: t.value.length, bytes: t.value, le: () => undefined };
  const nums = t.value;
  const size = TYPE_SIZE[t.type];
  const count = t.type === T.RATIONAL ? nums.length / 2 : nums.length;
  const bytes = new Uint8Array(count * size);
  return {
    count,
    bytes,
    le: (v, le) => {
      nums.forEach((n, i) => {
        if (t.type === T.RATIONAL) v.setUint32(i * 4, n, le);
        else if (size === 1) v.setUint8(i, n);
        else if (size === 2) v.setUint16(i * 2, n, le);
        else if (size === 4) v.setUint32(i * 4, n, le);
        else if (t.type === T.DOUBLE) v.setFloat64(i * 8, n, le);
        else v.setBigUint64(i * 8, BigInt(n), le);
      });
    },
  };
}

/** Lays out a TIFF: header, IFDs (each with its out-of-line values), then tile data. */
export function layoutTiff(images: TiffImageSpec[], options: WriteOptions = {}): TiffLayout {
  const le = options.littleEndian ?? true;
  const big = options.bigTiff ?? false;
  const entrySize = big ? 20 : 12;
  const inline = big ? 8 : 4;
  const offType = big ? T.LONG8 : T.LONG;
  // Flatten: each chain image followed by its SubIFDs.
  const flat: { spec: TiffImageSpec; chain: boolean }[] = [];
  for (const spec of images) {
    flat.push({ spec, chain: true });
    for (const sub of spec.subIfds ?? []) flat.push({ spec: sub, chain: false });
  }
  const tagsOf = (spec: TiffImageSpec): TiffTag[] => {
    const n = spec.blocks.length;
    const extra: TiffTag[] = [
      { tag: spec.tiled ? 324 : 273, type: offType, value: new Array<number>(n).fill(0) },
      { tag: spec.tiled ? 325 : 279, type: offType, value: spec.blocks.map((b) => b.length) },
    ];
    if (spec.subIfds?.length) extra.push({ tag: 330, type: big ? T.IFD8 : T.IFD, value: new Array<number>(spec.subIfds.length).fill(0) });
    return [...spec.tags, ...extra].sort((a, b) => a.tag - b.tag);
  };
  // Pass 1: sizes and offsets of IFDs and data.
  let cursor = big ? 16 : 8;
  const ifdAt: number[] = [];
  const tagLists = flat.map(({ spec }) => tagsOf(spec));
  for (const tags of tagLists) {
    ifdAt.push(cursor);
    cursor += (big ? 8 : 2) + tags.length * entrySize + (big ? 8 : 4);
    for (const t of tags) {
      const len = valueBytes(t).bytes.length;
      if (len > inline) cursor += len + (len & 1);
    }
  }
  let data = options.dataOffset ?? cursor;
  if (data < cursor) throw new Error('dataOffset overlaps the IFDs');
  const pieces: { offset: number; bytes: Uint8Array }[] = [];
  const blockAt = flat.map(({ spec }) =>
    spec.blocks.map((b) => {
      const at = b.length ? data : 0;
      if (b.length) pieces.push({ offset: data, bytes: b });
      data += b.length + (b.length & 1);
      return at;
    }),
  );
  // Pass 2: serialise IFDs with the now known offsets.
  const head = new Uint8Array(big ? 16 : 8);
  const hv = new DataView(head.buffer);
  head[0] = head[1] = le ? 0x49 : 0x4d;
  hv.setUint16(2, big ? 43 : 42, le);
  if (big) {
    hv.setUint16(4, 8, le);
    hv.setBigUint64(8, BigInt(ifdAt[0]), le);
  } else hv.setUint32(4, ifdAt[0], le);
  pieces.push({ offset: 0, bytes: head });
  flat.forEach(({ spec, chain }, k) => {
    const tags = tagLists[k];
    for (const t of tags) {
      if (t.tag === 324 || t.tag === 273) t.value = blockAt[k];
      if (t.tag === 330) t.value = (spec.subIfds ?? []).map((_, j) => ifdAt[k + 1 + j]);
    }
    let nextChain = 0;
    if (chain) {
      const later = flat.findIndex((f, j) => j > k && f.chain);
      nextChain = later >= 0 ? ifdAt[later] : 0;
    }
    const start = ifdAt[k];
    const size = (k + 1 < ifdAt.length ? ifdAt[k + 1] : cursor) - start;
    const buf = new Uint8Array(size);
    const v = new DataView(buf.buffer);
    let p = 0;
    if (big) { v.setBigUint64(0, BigInt(tags.length), le); p = 8; } else { v.setUint16(0, tags.length, le); p = 2; }
    let ext = p + tags.length * entrySize + (big ? 8 : 4);
    for (const t of tags) {
      const { count, bytes, le: fill } = valueBytes(t);
      fill(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), le);
      v.setUint16(p, t.tag, le);
      v.setUint16(p + 2, t.type, le);
      if (big) v.setBigUint64(p + 4, BigInt(count), le); else v.setUint32(p + 4, count, le);
      const vo = p + (big ? 12 : 8);
      if (bytes.length <= inline) buf.set(bytes, vo);
      else {
        if (big) v.setBigUint64(vo, BigInt(start + ext), le); else v.setUint32(vo, start + ext, le);
        buf.set(bytes, ext);
        ext += bytes.length + (bytes.length & 1);
      }
      p += entrySize;
    }
    if (big) v.setBigUint64(p, BigInt(nextChain), le); else v.setUint32(p, nextChain, le);
    pieces.push({ offset: start, bytes: buf });
  });
  return { size: Math.max(data, cursor), pieces };
}

/** The whole file as one buffer (not for sparse layouts). */
export function tiffBytes(layout: TiffLayout): Uint8Array {
  const out = new Uint8Array(layout.size);
  for (const { offset, bytes } of layout.pieces) out.set(bytes, offset);
  return out;
}

/** Tags every RGB or grayscale 8-bit image needs. */
export function basicTags(o: {
  width: number; height: number; compression: number; photometric: number; samples?: number;
  tileWidth?: number; tileHeight?: number; rowsPerStrip?: number; subfileType?: number; description?: string;
  jpegTables?: Uint8Array; ycbcrSubsampling?: [number, number];
}): TiffTag[] {
  const spp = o.samples ?? 3;
  const tags: TiffTag[] = [
    { tag: 256, type: T.LONG, value: [o.width] },
    { tag: 257, type: T.LONG, value: [o.height] },
    { tag: 258, type: T.SHORT, value: new Array<number>(spp).fill(8) },
    { tag: 259, type: T.SHORT, value: [o.compression] },
    { tag: 262, type: T.SHORT, value: [o.photometric] },
    { tag: 277, type: T.SHORT, value: [spp] },
    { tag: 284, type: T.SHORT, value: [1] },
  ];
  if (o.subfileType !== undefined) tags.push({ tag: 254, type: T.LONG, value: [o.subfileType] });
  if (o.description !== undefined) tags.push({ tag: 270, type: T.ASCII, value: o.description });
  if (o.tileWidth) tags.push({ tag: 322, type: T.SHORT, value: [o.tileWidth] }, { tag: 323, type: T.SHORT, value: [o.tileHeight ?? o.tileWidth] });
  if (o.rowsPerStrip) tags.push({ tag: 278, type: T.LONG, value: [o.rowsPerStrip] });
  if (o.jpegTables) tags.push({ tag: 347, type: T.UNDEFINED, value: o.jpegTables });
  if (o.ycbcrSubsampling) tags.push({ tag: 530, type: T.SHORT, value: o.ycbcrSubsampling });
  return tags;
}

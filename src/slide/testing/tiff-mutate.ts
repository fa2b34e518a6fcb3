// A seeded TIFF mutator for the fuzz tests (src/slide/fuzz.test.ts in Node, e2e/slide-decode.spec.ts
// in a browser worker): it finds the IFDs and where each field lives in a valid TIFF (classic or
// BigTIFF, either byte order) and breaks what a reader trusts: truncations, value offsets past
// the end, IFD loops, absurd dimensions and tile sizes, tile byte counts and offsets that lie,
// huge tag and entry counts, bad field types and codes, random bytes in IFDs and tile data, and
// decompression bombs (a tile replaced by Deflate, LZW, PackBits or ZSTD data of megabytes of zeros).
import { deflateBomb, lzwBomb, packBitsBomb, zstdBomb } from './bombs.ts';

/** xorshift32: the same mutants on every run. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

export interface Entry { pos: number; tag: number; type: number; count: number; valuePos: number; outOfLine: boolean; valueAt: number }
export interface Ifd { offset: number; entries: Entry[]; nextPos: number }
export interface Layout { le: boolean; big: boolean; ifds: Ifd[] }

const SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

/** The IFD chain (and SubIFDs) of a valid TIFF, with where each field lives. */
export function layout(b: Uint8Array): Layout {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = b[0] === 0x49;
  const big = v.getUint16(2, le) === 43;
  const u = (at: number, n: number) => (n === 1 ? v.getUint8(at) : n === 2 ? v.getUint16(at, le) : n === 4 ? v.getUint32(at, le) : Number(v.getBigUint64(at, le)));
  const ifds: Ifd[] = [];
  const queue = [big ? u(8, 8) : u(4, 4)];
  const seen = new Set<number>();
  while (queue.length) {
    const offset = queue.shift()!;
    if (!offset || seen.has(offset)) continue;
    seen.add(offset);
    const n = big ? u(offset, 8) : u(offset, 2);
    const first = offset + (big ? 8 : 2), es = big ? 20 : 12, inline = big ? 8 : 4;
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const pos = first + i * es;
      const tag = u(pos, 2), type = u(pos + 2, 2), count = big ? u(pos + 4, 8) : u(pos + 4, 4);
      const valuePos = pos + (big ? 12 : 8);
      const outOfLine = (SIZE[type] ?? 1) * count > inline;
      entries.push({ pos, tag, type, count, valuePos, outOfLine, valueAt: outOfLine ? u(valuePos, big ? 8 : 4) : valuePos });
      if (tag === 330) for (let k = 0; k < count; k++) queue.push(u((outOfLine ? u(valuePos, big ? 8 : 4) : valuePos) + k * SIZE[type], SIZE[type]));
    }
    const nextPos = first + n * es;
    ifds.push({ offset, entries, nextPos });
    queue.push(u(nextPos, big ? 8 : 4));
  }
  return { le, big, ifds };
}

export type Mutation = (b: Uint8Array, l: Layout, r: () => number) => [Uint8Array, string];

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const HUGE = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0xffffffff, 2 ** 20 + 1, 2 ** 31] as const;

function writer(b: Uint8Array, l: Layout) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return (at: number, size: number, value: number) => {
    if (at < 0 || at + size > b.length) return;
    if (size === 1) v.setUint8(at, value & 255);
    else if (size === 2) v.setUint16(at, value & 0xffff, l.le);
    else if (size === 4) v.setUint32(at, value >>> 0, l.le);
    else v.setBigUint64(at, BigInt(Math.min(value, Number.MAX_SAFE_INTEGER)), l.le);
  };
}

const entriesWith = (l: Layout, tags: number[]) => l.ifds.flatMap((d) => d.entries.filter((e) => tags.includes(e.tag)));

/** Sets a scalar tag (SHORT, LONG or LONG8) in place. */
function setScalar(b: Uint8Array, l: Layout, e: Entry, value: number): void {
  const size = SIZE[e.type] ?? 4;
  writer(b, l)(e.valuePos, Math.min(size, l.big ? 8 : 4), size === 2 ? Math.min(value, 0xffff) : value);
}

/** The bombs, made once: [compression, name, data, decoded bytes]. */
let bombs: [number, string, Uint8Array, number][] | null = null;
function theBombs(): [number, string, Uint8Array, number][] {
  if (!bombs) {
    const lzw = lzwBomb(3);
    bombs = [[8, 'Deflate', deflateBomb(16 * 2 ** 20), 16 * 2 ** 20], [5, 'LZW', lzw.bytes, lzw.decodedLength], [32773, 'PackBits', packBitsBomb(2 ** 16), 2 ** 23],
      [50000, 'ZSTD', zstdBomb(512), 2 ** 26]];
  }
  return bombs;
}

export const MUTATIONS: Record<string, Mutation> = {
  truncate: (b, _l, r) => { const n = Math.floor(r() ** 2 * b.length); return [b.slice(0, n), `cut to ${n} bytes`]; },
  'truncate-in-ifds': (b, l, r) => { const d = pick(r, l.ifds); const n = d.offset + Math.floor(r() * (d.nextPos - d.offset + 8)); return [b.slice(0, n), `cut at ${n}, inside the IFD at ${d.offset}`]; },
  'flip-bytes': (b, _l, r) => { const k = 1 + Math.floor(r() * 16); for (let i = 0; i < k; i++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256); return [b, `${k} random bytes`]; },
  'flip-ifd-bytes': (b, l, r) => { const d = pick(r, l.ifds); const k = 1 + Math.floor(r() * 6); for (let i = 0; i < k; i++) b[d.offset + Math.floor(r() * (d.nextPos - d.offset))] = Math.floor(r() * 256); return [b, `${k} bytes of the IFD at ${d.offset}`]; },
  'value-past-end': (b, l, r) => {
    const e = pick(r, l.ifds.flatMap((d) => d.entries.filter((x) => x.outOfLine)));
    if (!e) return [b, 'no out-of-line value'];
    const to = pick(r, [b.length, b.length + 1000, 0xfffffff0, 2 ** 40]);
    writer(b, l)(e.valuePos, l.big ? 8 : 4, to);
    return [b, `tag ${e.tag} values at byte ${to}`];
  },
  'ifd-loop': (b, l, r) => {
    const from = pick(r, l.ifds), to = pick(r, l.ifds.filter((d) => d.offset <= from.offset));
    writer(b, l)(from.nextPos, l.big ? 8 : 4, to.offset);
    return [b, `IFD at ${from.offset} continues at ${to.offset}`];
  },
  'next-ifd-past-end': (b, l, r) => { const d = pick(r, l.ifds); const to = pick(r, [b.length + 8, 0xfffffff0, 3]); writer(b, l)(d.nextPos, l.big ? 8 : 4, to); return [b, `next IFD at ${to}`]; },
  'absurd-dimensions': (b, l, r) => { const e = pick(r, entriesWith(l, [256, 257])); const v = pick(r, HUGE); if (e) setScalar(b, l, e, v); return [b, `tag ${e?.tag} = ${v}`]; },
  'absurd-tile-size': (b, l, r) => { const e = pick(r, entriesWith(l, [322, 323, 278])); const v = pick(r, [...HUGE, 16384, 65520, 8]); if (e) setScalar(b, l, e, v); return [b, `tag ${e?.tag} = ${v}`]; },
  'byte-count-lies': (b, l, r) => {
    const e = pick(r, entriesWith(l, [325, 279]));
    if (!e) return [b, 'no byte counts'];
    const size = SIZE[e.type], i = Math.floor(r() * e.count), at = e.valueAt + i * size;
    const v = pick(r, [0, 1, 0xffffffff, 0x7fffffff, b.length, 64 * 2 ** 20 + 1, 3 * 2 ** 30]);
    writer(b, l)(at, size, v);
    return [b, `tile ${i} byte count ${v}`];
  },
  'offset-lies': (b, l, r) => {
    const e = pick(r, entriesWith(l, [324, 273]));
    if (!e) return [b, 'no offsets'];
    const size = SIZE[e.type], i = Math.floor(r() * e.count), at = e.valueAt + i * size;
    const v = pick(r, [0, 1, 8, b.length - 1, b.length + 10, 0xffffffff, Math.floor(r() * b.length)]);
    writer(b, l)(at, size, v);
    return [b, `tile ${i} offset ${v}`];
  },
  'huge-tag-count': (b, l, r) => {
    const e = pick(r, l.ifds.flatMap((d) => d.entries));
    const v = pick(r, [0x7fffffff, 0xffffffff, 2 ** 28, 2 ** 24 + 3, 2 ** 40]);
    writer(b, l)(e.pos + 4, l.big ? 8 : 4, v);
    return [b, `tag ${e.tag} count ${v}`];
  },
  'huge-entry-count': (b, l, r) => { const d = pick(r, l.ifds); const v = pick(r, [0xffff, 5000, 2 ** 40]); writer(b, l)(d.offset, l.big ? 8 : 2, v); return [b, `IFD at ${d.offset} claims ${v} entries`]; },
  'bad-field-type': (b, l, r) => { const e = pick(r, l.ifds.flatMap((d) => d.entries)); const t = pick(r, [0, 14, 99, 0xffff]); writer(b, l)(e.pos + 2, 2, t); return [b, `tag ${e.tag} type ${t}`]; },
  'bad-codes': (b, l, r) => {
    const e = pick(r, entriesWith(l, [259, 262, 277, 258, 284, 317, 530]));
    const v = pick(r, [0, 2, 3, 4, 6, 7, 9, 16, 255, 33003, 33004, 33005, 50001, 65535]);
    if (e) setScalar(b, l, e, v);
    return [b, `tag ${e?.tag} = ${v}`];
  },
  'decompression-bomb': (b, l, r) => {
    const d = pick(r, l.ifds.filter((x) => x.entries.some((e) => e.tag === 324 || e.tag === 273) && x.entries.some((e) => e.tag === 259)));
    if (!d) return [b, 'no image with tiles or strips'];
    const offsets = d.entries.find((e) => e.tag === 324 || e.tag === 273)!;
    const counts = d.entries.find((e) => e.tag === 325 || e.tag === 279);
    const [compression, codec, bomb, decoded] = pick(r, theBombs());
    const at = b.length + (b.length & 1); // the bomb is appended; the first tile (or strip) points at it
    const out = new Uint8Array(at + bomb.length);
    out.set(b);
    out.set(bomb, at);
    const w = writer(out, l);
    w(offsets.valueAt, SIZE[offsets.type] ?? 4, at);
    if (counts) w(counts.valueAt, SIZE[counts.type] ?? 4, bomb.length);
    setScalar(out, l, d.entries.find((e) => e.tag === 259)!, compression);
    return [out, `tile 0 of the IFD at ${d.offset}: ${codec} (${compression}) of ${bomb.length} bytes that decodes to ${decoded}`];
  },
  'tile-data': (b, l, r) => {
    const e = pick(r, entriesWith(l, [324, 273]));
    const size = SIZE[e.type], i = Math.floor(r() * e.count);
    const dv = new DataView(b.buffer);
    const off = e.count === 1 && !e.outOfLine ? (size === 2 ? dv.getUint16(e.valuePos, l.le) : dv.getUint32(e.valuePos, l.le)) : size === 8 ? Number(dv.getBigUint64(e.valueAt + i * 8, l.le)) : size === 2 ? dv.getUint16(e.valueAt + i * 2, l.le) : dv.getUint32(e.valueAt + i * 4, l.le);
    const k = 1 + Math.floor(r() * 24);
    for (let j = 0; j < k; j++) { const at = off + Math.floor(r() ** 3 * 600); if (at < b.length) b[at] = Math.floor(r() * 256); }
    return [b, `${k} bytes in tile ${i} at ${off}`];
  },
};

/** `count` mutants of `seeds`, the same for the same `seed`. [name, bytes, what was done]. */
export function mutants(seeds: { name: string; bytes: Uint8Array }[], count: number, seed: number, kinds = Object.keys(MUTATIONS)): { name: string; kind: string; bytes: Uint8Array; detail: string }[] {
  const r = rng(seed);
  const out: { name: string; kind: string; bytes: Uint8Array; detail: string }[] = [];
  for (let m = 0; m < count; m++) {
    const s = seeds[m % seeds.length];
    const kind = kinds[Math.floor(r() * kinds.length)];
    const [bytes, detail] = MUTATIONS[kind](s.bytes.slice(), layout(s.bytes), r);
    out.push({ name: `mutant-${m}-${kind}-${s.name}`, kind, bytes, detail });
  }
  return out;
}

// Fuzzed TIFFs: a seeded mutator over the committed slides (fixtures/slides: Aperio JPEG and
// JPEG 2000, libvips WebP and JPEG 2000 pyramids, separate-plane LZW/Deflate). Mutations aim at
// what a reader trusts: truncations, value offsets past the end, IFD loops, absurd dimensions and
// tile sizes, tile byte counts and offsets that lie, huge tag counts, bad field types and codes,
// and random bytes in IFDs and tile data. Every mutant is opened and read (a level-0 region, the
// smallest level, the associated images) and must end within the bound with pixels or one
// SlideError line that names the file; anything else (another error type, a hang) fails. The
// reader refuses what would need more than its memory limits (limits.ts) before allocating; the
// process's resident memory is printed and bounded. Prints the count by outcome and the slowest.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SlideError } from './errors.ts';
import { MAX_TILE_BYTES } from './limits.ts';
import { encodeJpeg } from './testing/jpeg-encode.ts';
import { basicTags, layoutTiff, tiffBytes } from './testing/tiff-writer.ts';
import { openSlide, type SlideSource } from './source.ts';
import type { ByteSource } from './byte-source.ts';

const DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'fixtures', 'slides');
const MUTANTS = 300;
const SEED = 20261201;
/** Per-mutant bound (ms): generous for a loaded 2-core machine; a hang is what it catches. */
const BOUND_MS = 15_000;

/** xorshift32: the same mutants on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

interface Entry { pos: number; tag: number; type: number; count: number; valuePos: number; outOfLine: boolean; valueAt: number }
interface Ifd { offset: number; entries: Entry[]; nextPos: number }
interface Layout { le: boolean; big: boolean; ifds: Ifd[] }

const SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

/** The IFD chain (and SubIFDs) of a valid TIFF, with where each field lives. */
function layout(b: Uint8Array): Layout {
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

type Mutation = (b: Uint8Array, l: Layout, r: () => number) => [Uint8Array, string];

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

const MUTATIONS: Record<string, Mutation> = {
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

function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return { name, size: bytes.length, read: async (offset, length) => bytes.slice(offset, Math.min(bytes.length, offset + length)) };
}

/** Opens and reads what a user would: a level-0 region, the smallest level, the associated images. */
async function exercise(slide: SlideSource, signal: AbortSignal): Promise<void> {
  const l0 = slide.levels[0];
  await slide.readRegion(0, 0, 0, Math.min(l0.width, 256), Math.min(l0.height, 256), { signal });
  const last = slide.levels[slide.levels.length - 1];
  if (last.width * last.height <= 512 * 512) await slide.readRegion(slide.levels.length - 1, 0, 0, last.width, last.height, { signal });
  for (const a of slide.associated) if (a.decodable) await slide.readAssociated(a.kind, { signal });
}

describe('fuzzed TIFFs', () => {
  it(`${MUTANTS} seeded mutants end within ${BOUND_MS / 1000} s with pixels or a one-line SlideError naming the file`, async () => {
    const seeds = readdirSync(DIR).filter((f) => /\.(svs|tiff)$/.test(f)).sort().map((f) => ({ f, bytes: new Uint8Array(readFileSync(join(DIR, f))) }));
    expect(seeds.length).toBeGreaterThanOrEqual(10);
    const r = rng(SEED);
    const kinds = Object.keys(MUTATIONS);
    const outcomes = new Map<string, number>();
    const byKind = new Map<string, Map<string, number>>();
    const failures: string[] = [];
    const examples = new Map<string, string>();
    let slowest = { ms: 0, what: '' };
    let peakRss = 0;
    const t0 = performance.now();
    for (let m = 0; m < MUTANTS; m++) {
      const seed = seeds[m % seeds.length];
      const kind = kinds[Math.floor(r() * kinds.length)];
      const [bytes, detail] = MUTATIONS[kind](seed.bytes.slice(), layout(seed.bytes), r);
      const name = `mutant-${m}-${kind}-${seed.f}`;
      const controller = new AbortController();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const started = performance.now();
      let outcome: string;
      try {
        await Promise.race([
          (async () => {
            const slide = await openSlide(memorySource(name, bytes), { signal: controller.signal, cacheTiles: 4 });
            try { await exercise(slide, controller.signal); } finally { await slide.close(); }
          })(),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('TIMEOUT')), BOUND_MS); }),
        ]);
        outcome = 'pixels';
      } catch (e) {
        if (e instanceof SlideError) {
          outcome = e.code;
          if (!examples.has(`${kind}/${outcome}`)) examples.set(`${kind}/${outcome}`, `${detail} -> ${e.reason}`.slice(0, 200));
          if (!e.message.startsWith(`${name}: `) || /[\r\n]/.test(e.message)) failures.push(`${name} (${detail}): not one line naming the file: ${JSON.stringify(e.message)}`);
        } else {
          outcome = (e as Error)?.message === 'TIMEOUT' ? 'TIMEOUT' : 'CRASH';
          failures.push(`${name} (${detail}): ${outcome} ${(e as Error)?.stack ?? String(e)}`);
          controller.abort();
        }
      } finally {
        clearTimeout(timer);
      }
      const ms = performance.now() - started;
      if (ms > slowest.ms) slowest = { ms, what: `${name} (${detail})` };
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      const k = byKind.get(kind) ?? new Map<string, number>();
      k.set(outcome, (k.get(outcome) ?? 0) + 1);
      byKind.set(kind, k);
    }
    const wall = (performance.now() - t0) / 1000;
    const fmt = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`${MUTANTS} mutants of ${seeds.length} slides (seed ${SEED}) in ${wall.toFixed(1)} s: ${fmt(outcomes)}`);
    for (const [k, m] of [...byKind].sort()) console.log(`  ${k}: ${fmt(m)}`);
    if (process.env.FUZZ_EXAMPLES) for (const [k, v] of [...examples].sort()) console.log(`  e.g. ${k}: ${v}`);
    console.log(`slowest mutant ${slowest.ms.toFixed(0)} ms: ${slowest.what}; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
    expect(failures, failures.join('\n')).toEqual([]);
    expect(outcomes.get('pixels') ?? 0).toBeGreaterThan(0); // some mutants still read: the reads were exercised
    expect(outcomes.size).toBeGreaterThan(3);
    expect(peakRss).toBeLessThan(2 * 2 ** 30);
  }, 300_000);
});

/** First position of `needle` in `hay` at or after `from`, or -1. */
function find(hay: Uint8Array, needle: number[], from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

describe('the memory limit is enforced before allocating', () => {
  const limit = `over the reader's limit of ${MAX_TILE_BYTES / 2 ** 20} MiB per tile`;
  const refused = async (name: string, bytes: Uint8Array, read: (s: SlideSource) => Promise<unknown>) => {
    const before = process.memoryUsage().arrayBuffers;
    let error: unknown = null;
    try {
      const slide = await openSlide(memorySource(name, bytes));
      try { await read(slide); } finally { await slide.close(); }
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SlideError);
    const e = error as SlideError;
    console.log(e.message);
    expect(e.code).toBe('absurd-dimensions');
    expect(e.message.startsWith(`${name}: `)).toBe(true);
    expect(e.message).toContain(limit);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(MAX_TILE_BYTES);
  };

  it('a tile size whose decoded tile would exceed the limit is refused at open', async () => {
    const tags = basicTags({ width: 8192, height: 8192, compression: 1, photometric: 2, tileWidth: 8192 });
    await refused('huge-tile.tiff', tiffBytes(layoutTiff([{ tiled: true, blocks: [new Uint8Array(64)], tags }])), async () => undefined);
  });

  it('a JPEG tile whose frame header claims 60000 x 60000 is refused before decoding', async () => {
    const tile = encodeJpeg(new Uint8Array(64 * 64 * 3).fill(128), 64, 64, { quality: 90 });
    const sof = find(tile, [0xff, 0xc0]);
    tile.set([60000 >> 8, 60000 & 255, 60000 >> 8, 60000 & 255], sof + 5);
    const tags = basicTags({ width: 64, height: 64, compression: 7, photometric: 6, tileWidth: 64 });
    await refused('sof.tiff', tiffBytes(layoutTiff([{ tiled: true, blocks: [tile], tags }])), (s) => s.readRegion(0, 0, 0, 64, 64));
  });

  it('a WebP tile whose header claims 16383 x 16383 is refused before decoding', async () => {
    const bytes = new Uint8Array(readFileSync(join(DIR, 'webp-lossless.tiff')));
    const at = find(bytes, [0x56, 0x50, 0x38, 0x4c]); // 'VP8L'
    const bits = (16383 - 1) | ((16383 - 1) << 14);
    bytes.set([bits & 255, (bits >> 8) & 255, (bits >> 16) & 255, (bytes[at + 12] & 0xf0) | ((bits >>> 24) & 0x0f)], at + 9);
    await refused('webp-header.tiff', bytes, (s) => s.readRegion(0, 0, 0, 320, 240));
  });

  it('a JPEG 2000 codestream whose SIZ claims 60000 x 60000 is refused before decoding', async () => {
    const bytes = new Uint8Array(readFileSync(join(DIR, 'aperio-33005-rgb.svs')));
    for (let at = find(bytes, [0xff, 0x4f, 0xff, 0x51]); at >= 0; at = find(bytes, [0xff, 0x4f, 0xff, 0x51], at + 4)) {
      new DataView(bytes.buffer).setUint32(at + 8, 60000);
      new DataView(bytes.buffer).setUint32(at + 12, 60000);
    }
    await refused('siz.svs', bytes, (s) => s.readRegion(0, 0, 0, 128, 128));
  });
});

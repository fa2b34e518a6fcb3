// Fuzzed TIFFs: a seeded mutator over the committed slides (fixtures/slides: Aperio JPEG and
// JPEG 2000, libvips WebP and JPEG 2000 pyramids, separate-plane LZW/Deflate). Mutations aim at
// what a reader trusts: truncations, value offsets past the end, IFD loops, absurd dimensions and
// tile sizes, tile byte counts and offsets that lie, huge tag counts, bad field types and codes,
// random bytes in IFDs and tile data, and decompression bombs (Deflate, LZW, PackBits, ZSTD). Every mutant is opened and read (a level-0 region, the
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
import { layout, MUTATIONS, rng } from './testing/tiff-mutate.ts';
import { openSlide, type SlideSource } from './source.ts';
import type { ByteSource } from './byte-source.ts';

const DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'fixtures', 'slides');
const MUTANTS = 300;
const SEED = 20261201;
/** Per-mutant bound (ms): generous for a loaded 2-core machine; a hang is what it catches. */
const BOUND_MS = 15_000;

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

// Tiles from whole-slide files, read inside a rank: opens each slide once (kept in a small LRU),
// reads the grid tiles of the requested indices and resizes them to the model's tile size.
import type { TileSource, SlideTiles } from '../core/tiles.ts';
import type { SlideSource, TileDecoder } from '../slide/source.ts';
import { fromBlob, fromUrl } from '../slide/source.ts';
import { readTile } from '../slide/tiles.ts';
import { resampleRect } from '../slide/resample.ts';
import { SlideError, throwIfAborted } from '../slide/errors.ts';

export interface SlideFileOptions {
  decoder?: TileDecoder;
  /** Opens a string source that is not a URL (Node: a file path). */
  openPath?: (path: string, decoder?: TileDecoder) => Promise<SlideSource>;
  /** Slides kept open at once. */
  keepOpen?: number;
  /** Bytes of decoded, resized tiles kept for later reads (default DEFAULT_CACHE_BYTES; 0: none). */
  cacheBytes?: number;
}

/** Per rank: 32 MiB holds every tile of the demo presets (32 px, 3 KiB a tile), or about 200 tiles of 224 px. */
export const DEFAULT_CACHE_BYTES = 32 * 2 ** 20;

export class SlideFileTiles implements TileSource {
  private readonly slides = new Map<string, SlideTiles>();
  private readonly open = new Map<string, Promise<SlideSource>>();
  /** Decoded tiles "slide\0tile\0size" -> [size, size, 3] RGB, least recently used first. */
  private readonly cache = new Map<string, Uint8Array>();
  private cachedBytes = 0;

  constructor(slides: SlideTiles[], private readonly options: SlideFileOptions = {}) {
    for (const s of slides) this.slides.set(s.id, s);
  }

  private source(entry: SlideTiles): Promise<SlideSource> {
    let p = this.open.get(entry.id);
    if (p) {
      this.open.delete(entry.id); // re-insert: most recently used last
      this.open.set(entry.id, p);
      return p;
    }
    const { decoder, openPath } = this.options;
    const src = entry.source;
    const isUrl = typeof src === 'string' && /^(https?:|blob:|data:)/.test(src);
    p = typeof src !== 'string'
      ? fromBlob(src, { decoder, name: entry.id })
      : openPath && !isUrl
        ? openPath(src, decoder) // Node: a file path
        : fromUrl(src, { decoder }); // browser: absolute or relative URL
    p.catch(() => this.open.delete(entry.id));
    this.open.set(entry.id, p);
    while (this.open.size > (this.options.keepOpen ?? 4)) {
      const [oldest, old] = this.open.entries().next().value as [string, Promise<SlideSource>];
      this.open.delete(oldest);
      void old.then((s) => s.close()).catch(() => undefined);
    }
    return p;
  }

  /** [n, size, size, 3] RGB of engine tiles `tileIndices` (grid.tiles[i]) of one slide. */
  async read(slideId: string, tileIndices: Int32Array, size: number, signal?: AbortSignal): Promise<Uint8Array> {
    const entry = this.slides.get(slideId);
    if (!entry) throw new SlideError(slideId, 'this slide is not part of the data set the rank was given', 'io');
    throwIfAborted(signal, slideId);
    const out = new Uint8Array(tileIndices.length * size * size * 3);
    const row = size * size * 3;
    const key = (t: number) => `${slideId}\u0000${t}\u0000${size}`;
    // Tiles decoded before (validation reads the same tiles every epoch) come from the cache.
    const missing = Array.from(tileIndices, (t, n) => ({ t, n })).filter(({ t, n }) => {
      const hit = this.cache.get(key(t));
      if (!hit) return true;
      out.set(hit, n * row);
      this.cache.delete(key(t)); // most recently used last
      this.cache.set(key(t), hit);
      return false;
    });
    if (!missing.length) return out;
    const src = await this.source(entry);
    throwIfAborted(signal, slideId);
    const grid = entry.grid;
    await Promise.all(
      missing.map(async ({ t, n }) => {
        const tile = grid.tiles[t];
        if (!tile) throw new SlideError(slideId, `tile ${t} is outside its ${grid.tiles.length} tissue tiles`, 'io');
        const px = await readTile(src, grid, tile.index, { signal }); // [g, g, 3], g = grid.tileSize
        const g = grid.tileSize;
        const rgb = g === size ? px : resampleRect(px, g, g, 0, 0, g, g, size); // [size, size, 3]
        out.set(rgb, n * row);
        this.remember(key(t), rgb);
      }),
    );
    return out;
  }

  /** Keeps a decoded tile [size, size, 3] within the byte budget, least recently used out first. */
  private remember(key: string, rgb: Uint8Array): void {
    const budget = this.options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (rgb.byteLength > budget || this.cache.has(key)) return;
    this.cache.set(key, rgb.byteLength === rgb.buffer.byteLength ? rgb : rgb.slice());
    this.cachedBytes += rgb.byteLength;
    for (const [k, v] of this.cache) {
      if (this.cachedBytes <= budget) break;
      this.cache.delete(k);
      this.cachedBytes -= v.byteLength;
    }
  }

  dispose(): void {
    for (const p of this.open.values()) void p.then((s) => s.close()).catch(() => undefined);
    this.open.clear();
    this.cache.clear();
    this.cachedBytes = 0;
  }
}

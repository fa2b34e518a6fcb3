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
}

export class SlideFileTiles implements TileSource {
  private readonly slides = new Map<string, SlideTiles>();
  private readonly open = new Map<string, Promise<SlideSource>>();

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
    const src = await this.source(entry);
    throwIfAborted(signal, slideId);
    const grid = entry.grid;
    const out = new Uint8Array(tileIndices.length * size * size * 3);
    await Promise.all(
      Array.from(tileIndices, async (t, n) => {
        const tile = grid.tiles[t];
        if (!tile) throw new SlideError(slideId, `tile ${t} is outside its ${grid.tiles.length} tissue tiles`, 'io');
        const px = await readTile(src, grid, tile.index, { signal }); // [g, g, 3], g = grid.tileSize
        const g = grid.tileSize;
        out.set(g === size ? px : resampleRect(px, g, g, 0, 0, g, g, size), n * size * size * 3);
      }),
    );
    return out;
  }

  dispose(): void {
    for (const p of this.open.values()) void p.then((s) => s.close()).catch(() => undefined);
    this.open.clear();
  }
}

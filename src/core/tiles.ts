// Where tile pixels come from. A rank asks its TileSource for the tiles of its slots; the
// synthetic source here needs no files (tests, equivalence), the slide source (src/slide/)
// decodes whole-slide TIFFs inside the rank's worker.
import { hash32, Rng, Stream, stringKey } from './rng.ts';
import { throwIfAborted } from './abort.ts';
import type { SlideEntry } from './sampler.ts';
import type { TileGrid } from '../slide/tiles.ts';

export interface TileSource {
  /** [n, S, S, 3] RGB bytes of tiles `tileIndices` of slide `slideId`. */
  read(slideId: string, tileIndices: Int32Array, size: number, signal?: AbortSignal): Promise<Uint8Array>;
  dispose?(): void;
}

/**
 * A slide the rank workers decode themselves: a served URL, a Node path, or a File/Blob (which
 * crosses to a worker without copying), and its tile grid. Engine tile index i is grid.tiles[i].
 */
export interface SlideTiles {
  id: string;
  source: string | Blob;
  grid: TileGrid;
}

export type TileSourceSpec =
  | { kind: 'synthetic'; seed: number; slides: SlideEntry[]; lesionFraction?: number }
  | { kind: 'slides'; slides: SlideTiles[] };

/** A deterministic synthetic data set: positive slides carry "lesion" tiles, negatives none. */
export function syntheticSlides(count: number, seed: number, tilesPerSlide = 64, valFraction = 0.25): SlideEntry[] {
  const rng = new Rng(seed, Stream.synthetic, count);
  return Array.from({ length: count }, (_, i) => {
    const label = (i % 2) as 0 | 1;
    const split = i < Math.round(count * (1 - valFraction)) ? 'train' : 'val';
    return { id: `synthetic-${String(i).padStart(3, '0')}`, label, split, numTiles: Math.max(4, Math.round(tilesPerSlide * (0.5 + rng.next()))) };
  });
}

export class SyntheticTiles implements TileSource {
  private labels = new Map<string, 0 | 1>();
  constructor(private readonly seed: number, slides: SlideEntry[], private readonly lesionFraction = 0.2) {
    for (const s of slides) this.labels.set(s.id, s.label);
  }

  isLesion(slideId: string, tile: number): boolean {
    return this.labels.get(slideId) === 1 && hash32(this.seed, Stream.synthetic, stringKey(slideId), tile) / 4294967296 < this.lesionFraction;
  }

  async read(slideId: string, tileIndices: Int32Array, size: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    if (!this.labels.has(slideId)) throw new Error(`unknown slide ${slideId}`);
    const out = new Uint8Array(tileIndices.length * size * size * 3);
    tileIndices.forEach((tile, n) => this.paint(out.subarray(n * size * size * 3, (n + 1) * size * size * 3), size, slideId, tile));
    return out;
  }

  /** Pink stroma-like noise with scattered nuclei; lesion tiles get dense dark-purple clusters. */
  private paint(px: Uint8Array, size: number, slideId: string, tile: number): void {
    const rng = new Rng(this.seed, Stream.synthetic, stringKey(slideId), tile);
    for (let i = 0; i < size * size; i++) {
      const n = rng.next() * 30;
      px[i * 3] = 225 - n;
      px[i * 3 + 1] = 170 - n;
      px[i * 3 + 2] = 200 - n;
    }
    const lesion = this.isLesion(slideId, tile);
    const blobs = lesion ? 12 : 3;
    const radius = Math.max(1, size / (lesion ? 10 : 16));
    for (let b = 0; b < blobs; b++) {
      const cx = rng.next() * size;
      const cy = rng.next() * size;
      for (let y = Math.floor(cy - radius); y <= cy + radius; y++) {
        for (let x = Math.floor(cx - radius); x <= cx + radius; x++) {
          if (x < 0 || y < 0 || x >= size || y >= size || (x - cx) ** 2 + (y - cy) ** 2 > radius ** 2) continue;
          const i = (y * size + x) * 3;
          px[i] = lesion ? 70 : 120;
          px[i + 1] = lesion ? 30 : 80;
          px[i + 2] = lesion ? 110 : 160;
        }
      }
    }
  }
}

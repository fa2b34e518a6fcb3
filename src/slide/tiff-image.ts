// One TIFF image (a pyramid level or an associated image): its tile table, loaded once, and
// decoded tiles through a small LRU cache. Regions are assembled from tiles; missing tiles and the
// area outside the image read as white background.
import { readExact, type ByteSource } from './byte-source.ts';
import { createJsDecoder, type RawTile, type TileDecoder } from './decode-js.ts';
import { SlideError, throwIfAborted } from './errors.ts';
import { loadArray, TAG, type IfdInfo } from './tiff-dir.ts';

/** An RGB raster. `data` is [height, width, 3]. */
export interface Region {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

/** Largest region one call may read (pixels): about 200 MB of RGB. */
export const MAX_REGION_PIXELS = 64 * 2 ** 20;

interface TileTable {
  offsets: number[];
  counts: number[];
  jpegTables: Uint8Array | null;
}

export class TiffImage {
  readonly tilesAcross: number;
  readonly tilesDown: number;
  private table: Promise<TileTable> | null = null;
  private readonly cache = new Map<number, Promise<Uint8Array>>();

  constructor(
    private readonly src: ByteSource,
    private readonly littleEndian: boolean,
    readonly ifd: IfdInfo,
    private readonly decoder: TileDecoder = createJsDecoder(),
    private readonly cacheSize = 64,
  ) {
    this.tilesAcross = Math.ceil(ifd.width / ifd.tileWidth);
    this.tilesDown = Math.ceil(ifd.height / ifd.tileHeight);
  }

  private loadTable(signal?: AbortSignal): Promise<TileTable> {
    if (!this.table) {
      this.table = (async () => {
        const { fd, tiled } = this.ifd;
        const [offsets, counts] = await Promise.all([
          loadArray(this.src, this.littleEndian, fd, tiled ? TAG.TileOffsets : TAG.StripOffsets, signal),
          loadArray(this.src, this.littleEndian, fd, tiled ? TAG.TileByteCounts : TAG.StripByteCounts, signal),
        ]);
        const expected = this.tilesAcross * this.tilesDown;
        if (offsets.length < expected || counts.length < expected) {
          throw new SlideError(this.src.name, `corrupt file: ${tiled ? 'tile' : 'strip'} table has ${Math.min(offsets.length, counts.length)} entries, expected ${expected}`);
        }
        let jpegTables: Uint8Array | null = null;
        if (fd.hasTag(TAG.JPEGTables)) jpegTables = Uint8Array.from(await loadArray(this.src, this.littleEndian, fd, TAG.JPEGTables, signal));
        return { offsets, counts, jpegTables };
      })();
      this.table.catch(() => (this.table = null));
    }
    return this.table;
  }

  /** Rows in stored block row `ty` (strips: the last one may be shorter). */
  blockHeight(ty: number): number {
    const { tiled, tileHeight, height } = this.ifd;
    return tiled ? tileHeight : Math.min(tileHeight, height - ty * tileHeight);
  }

  /** The compressed bytes of stored tile (tx, ty), with what a decoder needs. */
  async readRawTile(tx: number, ty: number, options: ReadOptions = {}): Promise<RawTile> {
    if (!(tx >= 0 && ty >= 0 && tx < this.tilesAcross && ty < this.tilesDown)) {
      throw new SlideError(this.src.name, `tile (${tx}, ${ty}) outside the ${this.tilesAcross}x${this.tilesDown} tile grid`, 'invalid-argument');
    }
    const table = await this.loadTable(options.signal);
    const index = ty * this.tilesAcross + tx;
    const offset = table.offsets[index];
    const count = table.counts[index];
    const ifd = this.ifd;
    const bytes = count === 0 || offset === 0 ? new Uint8Array(0) : await readExact(this.src, offset, count, `tile ${index}`, options.signal);
    return {
      file: this.src.name, levelKey: ifd.offset, bytes, compression: ifd.compression, photometric: ifd.photometric,
      width: ifd.tileWidth, height: this.blockHeight(ty), samplesPerPixel: ifd.samplesPerPixel,
      bitsPerSample: ifd.bitsPerSample, planarConfiguration: ifd.planarConfiguration, predictor: ifd.predictor,
      jpegTables: table.jpegTables,
    };
  }

  /** Stored tile (tx, ty) as RGB [blockHeight, tileWidth, 3], cached. */
  readTileRgb(tx: number, ty: number, options: ReadOptions = {}): Promise<Uint8Array> {
    const key = ty * this.tilesAcross + tx;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const p = this.readRawTile(tx, ty, options).then((raw) => this.decoder(raw, options.signal));
    if (this.cacheSize > 0) {
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
      while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value as number);
    }
    return p;
  }

  /** Region [y, y+h) x [x, x+w) of this image as RGB; outside the image reads white. */
  async readRegion(x: number, y: number, w: number, h: number, options: ReadOptions = {}): Promise<Region> {
    for (const [k, v] of Object.entries({ x, y, w, h })) {
      if (!Number.isSafeInteger(v)) throw new SlideError(this.src.name, `region ${k} must be an integer, got ${v}`, 'invalid-argument');
    }
    if (w <= 0 || h <= 0 || w * h > MAX_REGION_PIXELS) {
      throw new SlideError(this.src.name, `region ${w}x${h} must be positive and at most ${MAX_REGION_PIXELS} pixels`, 'invalid-argument');
    }
    throwIfAborted(options.signal, this.src.name);
    const data = new Uint8Array(w * h * 3).fill(255);
    const { tileWidth: tw, tileHeight: th, width: iw, height: ih } = this.ifd;
    const x0 = Math.max(0, x), y0 = Math.max(0, y);
    const x1 = Math.min(iw, x + w), y1 = Math.min(ih, y + h);
    if (x0 >= x1 || y0 >= y1) return { width: w, height: h, data };
    const jobs: [number, number][] = [];
    for (let ty = Math.floor(y0 / th); ty * th < y1; ty++) {
      for (let tx = Math.floor(x0 / tw); tx * tw < x1; tx++) jobs.push([tx, ty]);
    }
    await mapLimit(jobs, 8, async ([tx, ty]) => {
      const tile = await this.readTileRgb(tx, ty, options);
      throwIfAborted(options.signal, this.src.name);
      // Copy the overlap of stored tile (tx, ty) with the clipped region.
      const cx0 = Math.max(x0, tx * tw), cx1 = Math.min(x1, (tx + 1) * tw);
      const cy0 = Math.max(y0, ty * th), cy1 = Math.min(y1, ty * th + this.blockHeight(ty));
      for (let yy = cy0; yy < cy1; yy++) {
        const from = ((yy - ty * th) * tw + (cx0 - tx * tw)) * 3;
        data.set(tile.subarray(from, from + (cx1 - cx0) * 3), ((yy - y) * w + (cx0 - x)) * 3);
      }
    });
    return { width: w, height: h, data };
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects on the first failure. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

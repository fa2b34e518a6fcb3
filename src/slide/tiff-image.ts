// One TIFF image (a pyramid level or an associated image): its tile table, loaded once, and
// decoded tiles through a small LRU cache. Regions are assembled from tiles; missing tiles and the
// area outside the image read as white background. Separate colour planes (PlanarConfiguration 2)
// store each sample in its own tiles, plane after plane: a raw tile then carries one block per
// plane (RawTile.planes) and the decoder interleaves them. Tile byte counts are checked against
// the memory limits (limits.ts) before a byte is read.
import { readExact, type ByteSource } from './byte-source.ts';
import { createJsDecoder, type RawTile, type TileDecoder } from './decode-js.ts';
import { SlideError, throwIfAborted } from './errors.ts';
import { checkClaim, MAX_REGION_PIXELS, MAX_TILE_COMPRESSED_BYTES } from './limits.ts';
import { loadArray, TAG, type IfdInfo } from './tiff-dir.ts';

export { MAX_REGION_PIXELS } from './limits.ts';

/** An RGB raster. `data` is [height, width, 3]. */
export interface Region {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

interface TileTable {
  offsets: number[];
  counts: number[];
  jpegTables: Uint8Array | null;
}

export class TiffImage {
  readonly tilesAcross: number;
  readonly tilesDown: number;
  /** Stored planes: samples per pixel for PlanarConfiguration 2, else 1. */
  readonly planes: number;
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
    this.planes = ifd.planarConfiguration === 2 && ifd.samplesPerPixel > 1 ? ifd.samplesPerPixel : 1;
  }

  private loadTable(signal?: AbortSignal): Promise<TileTable> {
    if (!this.table) {
      this.table = (async () => {
        const { fd, tiled } = this.ifd;
        const [offsets, counts] = await Promise.all([
          loadArray(this.src, this.littleEndian, fd, tiled ? TAG.TileOffsets : TAG.StripOffsets, signal),
          loadArray(this.src, this.littleEndian, fd, tiled ? TAG.TileByteCounts : TAG.StripByteCounts, signal),
        ]);
        const expected = this.tilesAcross * this.tilesDown * this.planes;
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
    const perPlane = this.tilesAcross * this.tilesDown;
    const what = this.ifd.tiled ? 'tile' : 'strip';
    const planes: Uint8Array[] = [];
    for (let p = 0; p < this.planes; p++) {
      const at = p * perPlane + index;
      const offset = table.offsets[at];
      const count = table.counts[at];
      checkClaim(this.src.name, `${what} ${at} (byte count)`, count, MAX_TILE_COMPRESSED_BYTES);
      planes.push(count === 0 || offset === 0 ? new Uint8Array(0) : await readExact(this.src, offset, count, `${what} ${at}`, options.signal));
    }
    const ifd = this.ifd;
    return {
      file: this.src.name, levelKey: ifd.offset, bytes: planes[0], compression: ifd.compression, photometric: ifd.photometric,
      width: ifd.tileWidth, height: this.blockHeight(ty), storedHeight: ifd.tileHeight, block: `${what} ${index}`, samplesPerPixel: ifd.samplesPerPixel,
      bitsPerSample: ifd.bitsPerSample, planarConfiguration: ifd.planarConfiguration, predictor: ifd.predictor,
      jpegTables: table.jpegTables, ...(this.planes > 1 ? { planes } : {}),
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

// SlideSource: the one seam over whole-slide TIFFs (Aperio SVS, libvips pyramids, OME-TIFF with
// SubIFD levels, BigTIFF, big-endian files). Open it from a Blob/File, a URL or (node-open.ts) a
// path; read levels, associated images, µm per pixel and RGB regions. Format quirks stay in here.
import { GeoTIFF } from 'geotiff';
import { blobByteSource, geotiffSource, UrlByteSource, type ByteSource, type UrlSourceOptions } from './byte-source.ts';
import type { RawTile, TileDecoder } from './decode-js.ts';
import { isJ2k, jsDecodable } from './decode-js.ts';
import { asSlideError, SlideError, throwIfAborted } from './errors.ts';
import { checkTileMemory } from './limits.ts';
import { classifyIfds, compressionName, photometricName, slideMpp, type AssociatedKind, type MppSource } from './metadata.ts';
import { walkIfds, type IfdInfo } from './tiff-dir.ts';
import { TiffImage, type ReadOptions, type Region } from './tiff-image.ts';

export type { Region, ReadOptions } from './tiff-image.ts';
export type { RawTile, TileDecoder } from './decode-js.ts';

export interface SlideLevel {
  index: number;
  width: number;
  height: number;
  /** Stored tile size; (width, rows per strip) for strip images. */
  tileWidth: number;
  tileHeight: number;
  tiled: boolean;
  compression: number;
  compressionName: string;
  photometric: number;
  photometricName: string;
  /** Level-0 pixels per pixel of this level (mean of x and y). */
  downsample: number;
}

export interface AssociatedImage {
  kind: AssociatedKind;
  width: number;
  height: number;
  compression: number;
  compressionName: string;
  /** Whether readAssociated can decode it. */
  decodable: boolean;
}

export interface OpenOptions {
  signal?: AbortSignal;
  /** Tile decoder; default geotiff's JS codecs (decode-native.ts has the browser's). */
  decoder?: TileDecoder;
  /** µm per level-0 pixel, overriding (or supplying) what the file says. */
  mpp?: number;
  /** Decoded tiles kept per image (LRU). */
  cacheTiles?: number;
}

export interface SlideSource {
  readonly name: string;
  readonly littleEndian: boolean;
  readonly bigTiff: boolean;
  /** Pyramid levels, level 0 (largest) first. */
  readonly levels: readonly SlideLevel[];
  readonly associated: readonly AssociatedImage[];
  /** µm per level-0 pixel, or null when the file does not say (set OpenOptions.mpp). */
  readonly mpp: number | null;
  readonly mppSource: MppSource | null;
  /** The level-0 ImageDescription (Aperio header, OME-XML), without trailing NULs. */
  readonly description: string | null;
  /** RGB of [y, y+h) x [x, x+w) in `level`'s own pixels. `data` is [h, w, 3]. */
  readRegion(level: number, x: number, y: number, w: number, h: number, options?: ReadOptions): Promise<Region>;
  /** One stored tile, compressed, for decoding elsewhere (native decoders, workers). */
  readRawTile(level: number, tx: number, ty: number, options?: ReadOptions): Promise<RawTile>;
  /** A whole associated image (label, macro, thumbnail) as RGB. */
  readAssociated(kind: AssociatedKind, options?: ReadOptions): Promise<Region>;
  close(): Promise<void>;
}

/** Dimensions past these are treated as a corrupt header, not a slide. */
export const MAX_SIDE = 2 ** 20;
export const MAX_TILE_SIDE = 16384;

function unsupportedReason(ifd: IfdInfo): string | null {
  if (!jsDecodable(ifd.compression)) return `unsupported compression ${compressionName(ifd.compression)}`;
  if (ifd.bitsPerSample.some((b) => b !== 8)) return `unsupported bit depth ${ifd.bitsPerSample.join('/')} (8 bits per sample only)`;
  if (![0, 1, 2, 6].includes(ifd.photometric)) return `unsupported photometric interpretation ${photometricName(ifd.photometric)}`;
  if (isJ2k(ifd.compression)) {
    // Aperio JPEG 2000: colour comes from the compression code and the codestream (decode-j2k.ts).
    if (ifd.samplesPerPixel !== 3 && ifd.samplesPerPixel !== 1) return `unsupported JPEG 2000 image with ${ifd.samplesPerPixel} samples per pixel`;
    return null;
  }
  if (ifd.compression === 50001 && ifd.samplesPerPixel !== 3 && ifd.samplesPerPixel !== 4) return `unsupported WebP image with ${ifd.samplesPerPixel} samples per pixel`;
  if (ifd.photometric === 6 && ifd.compression !== 7) return 'unsupported YCbCr image without JPEG compression';
  if (ifd.planarConfiguration !== 1 && ifd.samplesPerPixel > 1) {
    if (ifd.planarConfiguration !== 2) return `unsupported PlanarConfiguration ${ifd.planarConfiguration}`;
    if (ifd.photometric === 6 || ifd.compression === 50001) return `unsupported separate colour planes (PlanarConfiguration 2) with ${ifd.photometric === 6 ? 'YCbCr' : 'WebP'}`;
    if (ifd.photometric === 2 && ifd.samplesPerPixel < 3) return `corrupt file: RGB with ${ifd.samplesPerPixel} samples per pixel`;
  }
  return null;
}

function checkDimensions(name: string, ifd: IfdInfo): void {
  const { width, height, tileWidth, tileHeight } = ifd;
  if (!(width > 0 && height > 0 && width <= MAX_SIDE && height <= MAX_SIDE)) {
    throw new SlideError(name, `absurd dimensions ${width}x${height} (limit ${MAX_SIDE} per side)`, 'absurd-dimensions');
  }
  if (!(tileWidth > 0 && tileHeight > 0) || (ifd.tiled && (tileWidth > MAX_TILE_SIDE || tileHeight > MAX_TILE_SIDE))) {
    throw new SlideError(name, `absurd tile size ${tileWidth}x${tileHeight}`, 'absurd-dimensions');
  }
  checkTileMemory(name, ifd.tiled ? 'tile' : 'strip', tileWidth, tileHeight, ifd.samplesPerPixel);
}

class TiffSlide implements SlideSource {
  readonly levels: SlideLevel[];
  readonly associated: AssociatedImage[];
  readonly mpp: number | null;
  readonly mppSource: MppSource | null;
  readonly description: string | null;
  private readonly levelImages: TiffImage[];
  private readonly associatedImages: { kind: AssociatedKind; image: TiffImage }[];

  constructor(private readonly src: ByteSource, readonly littleEndian: boolean, readonly bigTiff: boolean, ifds: IfdInfo[], options: OpenOptions) {
    const name = src.name;
    const { levels, associated } = classifyIfds(ifds);
    if (levels.length === 0) throw new SlideError(name, 'corrupt file: no images');
    const base = levels[0];
    for (const l of levels) {
      checkDimensions(name, l);
      const reason = unsupportedReason(l);
      if (reason) throw new SlideError(name, reason, 'unsupported');
    }
    const make = (ifd: IfdInfo) => new TiffImage(src, littleEndian, ifd, options.decoder, options.cacheTiles ?? 64);
    this.levelImages = levels.map(make);
    this.levels = levels.map((l, index) => ({
      index, width: l.width, height: l.height, tileWidth: l.tileWidth, tileHeight: l.tileHeight, tiled: l.tiled,
      compression: l.compression, compressionName: compressionName(l.compression),
      photometric: l.photometric, photometricName: photometricName(l.photometric),
      downsample: (base.width / l.width + base.height / l.height) / 2,
    }));
    const sane = associated.filter(({ ifd }) => ifd.width > 0 && ifd.height > 0 && ifd.width <= MAX_SIDE && ifd.height <= MAX_SIDE);
    this.associatedImages = sane.map(({ kind, ifd }) => ({ kind, image: make(ifd) }));
    this.associated = sane.map(({ kind, ifd }) => ({
      kind, width: ifd.width, height: ifd.height, compression: ifd.compression,
      compressionName: compressionName(ifd.compression), decodable: unsupportedReason(ifd) === null,
    }));
    this.description = base.description;
    const found = slideMpp(base);
    if (options.mpp !== undefined) {
      if (!(options.mpp > 0)) throw new SlideError(name, `µm per pixel must be positive, got ${options.mpp}`, 'invalid-argument');
      this.mpp = options.mpp;
      this.mppSource = 'user';
    } else {
      this.mpp = found?.mpp ?? null;
      this.mppSource = found?.source ?? null;
    }
  }

  get name(): string {
    return this.src.name;
  }

  private level(level: number): TiffImage {
    const image = this.levelImages[level];
    if (!Number.isInteger(level) || !image) {
      throw new SlideError(this.name, `no level ${level} (the slide has ${this.levels.length})`, 'invalid-argument');
    }
    return image;
  }

  async readRegion(level: number, x: number, y: number, w: number, h: number, options: ReadOptions = {}): Promise<Region> {
    const image = this.level(level);
    try {
      return await image.readRegion(x, y, w, h, options);
    } catch (e) {
      throw asSlideError(e, this.name, `reading level ${level}`);
    }
  }

  async readRawTile(level: number, tx: number, ty: number, options: ReadOptions = {}): Promise<RawTile> {
    const image = this.level(level);
    try {
      return await image.readRawTile(tx, ty, options);
    } catch (e) {
      throw asSlideError(e, this.name, `reading level ${level}`);
    }
  }

  async readAssociated(kind: AssociatedKind, options: ReadOptions = {}): Promise<Region> {
    const found = this.associatedImages.find((a) => a.kind === kind);
    if (!found) throw new SlideError(this.name, `no ${kind} image`, 'invalid-argument');
    const reason = unsupportedReason(found.image.ifd);
    if (reason) throw new SlideError(this.name, `${kind} image: ${reason}`, 'unsupported');
    checkDimensions(this.name, found.image.ifd);
    const { width, height } = found.image.ifd;
    try {
      return await found.image.readRegion(0, 0, width, height, options);
    } catch (e) {
      throw asSlideError(e, this.name, `reading the ${kind} image`);
    }
  }

  async close(): Promise<void> {
    await this.src.close?.();
  }
}

/** Opens a slide over any byte source. Throws SlideError for anything it cannot read correctly. */
export async function openSlide(src: ByteSource, options: OpenOptions = {}): Promise<SlideSource> {
  const { signal } = options;
  try {
    throwIfAborted(signal, src.name);
    const head = await src.read(0, 16, signal);
    const tag = String.fromCharCode(head[0] ?? 0, head[1] ?? 0);
    if (head.length < 8 || (tag !== 'II' && tag !== 'MM')) {
      throw new SlideError(src.name, src.size === 0 ? 'empty file' : 'not a TIFF file (no II/MM byte-order mark)', 'not-tiff');
    }
    const magic = tag === 'II' ? head[2] | (head[3] << 8) : (head[2] << 8) | head[3];
    if (magic !== 42 && magic !== 43) throw new SlideError(src.name, `not a TIFF file (magic number ${magic})`, 'not-tiff');
    const tiff = await GeoTIFF.fromSource(geotiffSource(src) as never, {}, signal);
    const ifds = await walkIfds(src, tiff, signal);
    return new TiffSlide(src, tiff.littleEndian, tiff.bigTiff, ifds, options);
  } catch (e) {
    await src.close?.().catch(() => undefined);
    throw asSlideError(e, src.name, 'reading the TIFF structure');
  }
}

/** Opens a local File or Blob without reading it whole. */
export function fromBlob(blob: Blob, options: OpenOptions & { name?: string } = {}): Promise<SlideSource> {
  return openSlide(blobByteSource(blob, options.name), options);
}

/** Opens a served slide with HTTP range requests: tile tables once per level, then one request per tile. */
export function fromUrl(url: string, options: OpenOptions & UrlSourceOptions = {}): Promise<SlideSource> {
  return openSlide(new UrlByteSource(url, options), options);
}

// The memory limits of the slide reader. A corrupt or hostile file can claim any size: dimensions,
// tile sizes, tag counts, tile byte counts, a codestream's own header. Every claim is checked
// against these before anything is allocated, and a file over a limit is refused with a
// SlideError that names the file, what it asked for and the limit ('absurd-dimensions').
import { SlideError } from './errors.ts';

const MiB = 2 ** 20;

/** Decoded bytes of one tile or strip, counted as RGBA (the widest a decoder produces): 64 MiB. */
export const MAX_TILE_BYTES = 64 * MiB;
/** Compressed bytes one tile or strip may claim: 64 MiB. */
export const MAX_TILE_COMPRESSED_BYTES = 64 * MiB;
/** Bytes of one tag's values (tile offset and byte-count tables included): 64 MiB. */
export const MAX_TAG_BYTES = 64 * MiB;
/** Entries in one IFD (BigTIFF counts them in 64 bits). */
export const MAX_IFD_ENTRIES = 4096;
/** Pixels of one region read (RGB: 192 MiB). */
export const MAX_REGION_PIXELS = 64 * MiB;

const mib = (bytes: number) => `${(bytes / MiB).toFixed(bytes < MiB ? 2 : 0)} MiB`;

/** Throws when a decoded w x h block of `samples` samples would exceed MAX_TILE_BYTES. */
export function checkTileMemory(file: string, what: string, width: number, height: number, samples = 4): void {
  const bytes = width * height * Math.max(4, samples);
  if (!(bytes <= MAX_TILE_BYTES)) {
    throw new SlideError(file, `${what} ${width}x${height} would need ${mib(bytes)} decoded, over the reader's limit of ${mib(MAX_TILE_BYTES)} per tile`, 'absurd-dimensions');
  }
}

/** Throws when `bytes` claimed for `what` exceed `limit`. */
export function checkClaim(file: string, what: string, bytes: number, limit: number): void {
  if (!(bytes <= limit)) {
    throw new SlideError(file, `${what} claims ${mib(bytes)}, over the reader's limit of ${mib(limit)}`, 'absurd-dimensions');
  }
}

// Pure functions over IFD summaries: which IFDs are pyramid levels and which are label, macro or
// thumbnail images, the slide's µm per pixel, and names for TIFF codes.

/** The fields of an IFD summary that classification and resolution need. */
export interface IfdShape {
  chainIndex: number;
  parentIndex: number;
  width: number;
  height: number;
  tiled: boolean;
  newSubfileType: number;
  description: string | null;
  resolution: [number, number] | null;
  resolutionUnit: number;
}

export type AssociatedKind = 'label' | 'macro' | 'thumbnail' | 'other';

export interface Classified<T> {
  /** Pyramid levels, largest first. */
  levels: T[];
  associated: { kind: AssociatedKind; ifd: T }[];
}

const COMPRESSION: Record<number, string> = {
  1: 'none', 5: 'LZW', 6: 'old-style JPEG', 7: 'JPEG', 8: 'Deflate', 32946: 'Deflate', 32773: 'PackBits',
  33003: 'JPEG 2000', 33004: 'JPEG 2000', 33005: 'JPEG 2000', 34712: 'JPEG 2000', 34887: 'LERC', 50000: 'ZSTD', 50001: 'WebP',
};
export function compressionName(code: number): string {
  return COMPRESSION[code] ? `${COMPRESSION[code]} (${code})` : `unknown (${code})`;
}

const PHOTOMETRIC: Record<number, string> = { 0: 'WhiteIsZero', 1: 'BlackIsZero', 2: 'RGB', 3: 'Palette', 4: 'Mask', 5: 'CMYK', 6: 'YCbCr', 8: 'CIELab' };
export function photometricName(code: number): string {
  return PHOTOMETRIC[code] ?? `unknown (${code})`;
}

function associatedKindFromDescription(description: string | null): AssociatedKind | null {
  if (!description) return null;
  const m = /^\s*(label|macro|thumbnail)\b/im.exec(description);
  return m ? (m[1].toLowerCase() as AssociatedKind) : null;
}

/** True when `ifd` has `base`'s aspect ratio at a downsample of at least ~1.5. */
function isReduced(base: IfdShape, ifd: IfdShape): boolean {
  if (ifd.width <= 0 || ifd.height <= 0 || ifd.width >= base.width || ifd.height >= base.height) return false;
  const dx = base.width / ifd.width;
  const dy = base.height / ifd.height;
  const d = (dx + dy) / 2;
  // Levels are rounded up or down by up to one pixel per side: allow that, or 2%.
  const tol = Math.max(0.02 * d, (d + 1) / Math.min(ifd.width, ifd.height));
  return Math.abs(dx - dy) <= tol && d >= 1.2;
}

/**
 * Splits IFDs into pyramid levels and associated images. Level 0 is the first tiled IFD of the
 * main chain (or the first IFD when none is tiled). SubIFDs of level 0 (OME-TIFF) are levels.
 * Other IFDs are levels when tiled (or when the whole file is stripped), reduced with the same
 * aspect ratio; descriptions saying label/macro/thumbnail (Aperio) win; Aperio's macro has
 * NewSubfileType 9; an untiled reduced image beside a tiled pyramid is a thumbnail.
 */
export function classifyIfds<T extends IfdShape>(ifds: readonly T[]): Classified<T> {
  const chain = ifds.filter((i) => i.parentIndex < 0);
  const base = chain.find((i) => i.tiled) ?? chain[0];
  if (!base) return { levels: [], associated: [] };
  const anyTiled = chain.some((i) => i.tiled);
  const levels: T[] = [base];
  const associated: { kind: AssociatedKind; ifd: T }[] = [];
  const subLevels = ifds.filter((i) => i.parentIndex === base.chainIndex && isReduced(base, i));
  levels.push(...subLevels);
  for (const ifd of ifds) {
    if (ifd === base || subLevels.includes(ifd)) continue;
    if (ifd.parentIndex >= 0) {
      if (ifd.parentIndex !== base.chainIndex) continue; // SubIFDs of other images: their own pyramids
      associated.push({ kind: 'other', ifd });
      continue;
    }
    const named = associatedKindFromDescription(ifd.description);
    if (named) associated.push({ kind: named, ifd });
    else if (ifd.newSubfileType === 9) associated.push({ kind: 'macro', ifd });
    else if (isReduced(base, ifd) && (ifd.tiled || !anyTiled) && subLevels.length === 0) levels.push(ifd);
    else if (isReduced(base, ifd) && !ifd.tiled) associated.push({ kind: 'thumbnail', ifd });
    else associated.push({ kind: 'other', ifd });
  }
  levels.sort((a, b) => b.width - a.width);
  // Two IFDs of one size (planes, channels): keep the first as the level.
  const unique = levels.filter((l, i) => i === 0 || l.width !== levels[i - 1].width);
  for (const l of levels) if (!unique.includes(l)) associated.push({ kind: 'other', ifd: l });
  return { levels: unique, associated };
}

export type MppSource = 'aperio' | 'ome' | 'tiff-resolution' | 'user';

/** µm per pixel from an Aperio ImageDescription ("...|MPP = 0.2520|..."), or null. */
export function aperioMpp(description: string | null): number | null {
  if (!description || !/^Aperio/i.test(description.trimStart())) return null;
  const m = /\|\s*MPP\s*=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)/.exec(description.replace(/\0+$/, ''));
  const v = m ? Number(m[1]) : NaN;
  return v > 0 && Number.isFinite(v) ? v : null;
}

const UNIT_UM: Record<string, number> = { 'µm': 1, 'μm': 1, um: 1, nm: 1e-3, 'Å': 1e-4, mm: 1e3, cm: 1e4, m: 1e6 };

/** µm per pixel from OME-XML: the first Pixels element's PhysicalSizeX/Y (default unit µm). */
export function omeMpp(xml: string | null): number | null {
  if (!xml || !/<OME[\s>]/.test(xml)) return null;
  const pixels = /<(?:\w+:)?Pixels\b[^>]*>/.exec(xml)?.[0];
  if (!pixels) return null;
  const attr = (name: string): string | undefined => new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`).exec(pixels)?.[1];
  const size = (axis: 'X' | 'Y'): number | null => {
    const v = Number(attr(`PhysicalSize${axis}`));
    const unit = UNIT_UM[attr(`PhysicalSize${axis}Unit`) ?? 'µm'];
    return v > 0 && unit ? v * unit : null;
  };
  const x = size('X');
  const y = size('Y');
  return x !== null && y !== null ? (x + y) / 2 : x ?? y;
}

/** µm per pixel from XResolution/ResolutionUnit; null for unit "none" or values no microscope gives. */
export function resolutionTagMpp(resolution: [number, number] | null, unit: number): number | null {
  if (!resolution || !(resolution[0] > 0)) return null;
  const umPerUnit = unit === 3 ? 1e4 : unit === 2 ? 25400 : 0;
  if (!umPerUnit) return null;
  const mpp = umPerUnit / ((resolution[0] + (resolution[1] > 0 ? resolution[1] : resolution[0])) / 2);
  return mpp >= 0.01 && mpp <= 100 ? mpp : null;
}

/** The slide's µm per pixel at level 0, from the best source available, or null when unknown. */
export function slideMpp(level0: IfdShape): { mpp: number; source: MppSource } | null {
  const aperio = aperioMpp(level0.description);
  if (aperio !== null) return { mpp: aperio, source: 'aperio' };
  const ome = omeMpp(level0.description);
  if (ome !== null) return { mpp: ome, source: 'ome' };
  const tags = resolutionTagMpp(level0.resolution, level0.resolutionUnit);
  return tags !== null ? { mpp: tags, source: 'tiff-resolution' } : null;
}

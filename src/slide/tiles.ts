// The tile grid of a slide at a target tile size and resolution (default 224 px at 0.5 µm/px):
// a fixed grid over level 0, the pyramid level to read each tile from, and the tiles whose tissue
// fraction passes a threshold. Tile indices are stable (row-major over the whole grid), and each
// tile carries its level-0 rectangle so attention maps back onto the slide.
import { SlideError } from './errors.ts';
import { resampleRect } from './resample.ts';
import type { SlideLevel, SlideSource } from './source.ts';
import { detectTissue, type TissueMask, type TissueOptions } from './tissue.ts';

export interface TileGridOptions {
  /** Output tile side in pixels. */
  tileSize?: number;
  /** Target µm per pixel of the output tiles. */
  mpp?: number;
  /** Keep tiles whose tissue fraction is at least this. */
  minTissue?: number;
  /** Overlap of neighbouring tiles in output pixels (at `mpp`); the stride is tileSize - overlap. */
  overlap?: number;
}

export const DEFAULT_TILE_SIZE = 224;
export const DEFAULT_MPP = 0.5;
export const DEFAULT_MIN_TISSUE = 0.25;

/** One kept tile: stable index and level-0 rectangle. */
export interface TileRect {
  index: number;
  x: number;
  y: number;
  w: number;
  h: number;
  /** Tissue fraction 0..1 under the tile. */
  tissue: number;
}

export interface TileGrid {
  tileSize: number;
  /** Target µm per output pixel, and the slide's level-0 µm per pixel. */
  mpp: number;
  slideMpp: number;
  /** Level-0 pixels per tile side (integer; the effective mpp is slideMpp * tile0 / tileSize). */
  tile0: number;
  /** Level-0 pixels from one tile's origin to the next (tile0 minus the overlap); absent: tile0. */
  stride0?: number;
  cols: number;
  rows: number;
  /** Level read for every tile; its scale relative to level 0 per axis. */
  level: number;
  levelScaleX: number;
  levelScaleY: number;
  /** Whether tiles are resampled (no level matches the target resolution exactly). */
  resample: boolean;
  /** Kept tiles in index order. */
  tiles: TileRect[];
}

/** The pyramid level to read: the coarsest one still at least as fine as the target. */
export function chooseLevel(levels: readonly SlideLevel[], tile0: number, tileSize: number): SlideLevel {
  const wanted = tile0 / tileSize; // level-0 px per output px
  return [...levels].reverse().find((l) => l.downsample <= wanted * 1.002) ?? levels[0];
}

/** Fraction of mask pixels (by centre) under the level-0 rectangle. */
export function tissueFraction(mask: TissueMask, x: number, y: number, w: number, h: number): number {
  const i0 = Math.max(0, Math.ceil(x / mask.downsampleX - 0.5)), i1 = Math.min(mask.width, Math.ceil((x + w) / mask.downsampleX - 0.5));
  const j0 = Math.max(0, Math.ceil(y / mask.downsampleY - 0.5)), j1 = Math.min(mask.height, Math.ceil((y + h) / mask.downsampleY - 0.5));
  if (i1 <= i0 || j1 <= j0) {
    // Tile smaller than a mask pixel: the pixel under its centre decides.
    const i = Math.min(mask.width - 1, Math.floor((x + w / 2) / mask.downsampleX));
    const j = Math.min(mask.height - 1, Math.floor((y + h / 2) / mask.downsampleY));
    return mask.data[j * mask.width + i] ?? 0;
  }
  let n = 0;
  for (let j = j0; j < j1; j++) for (let i = i0; i < i1; i++) n += mask.data[j * mask.width + i];
  return n / ((i1 - i0) * (j1 - j0));
}

/** Plans the grid: pure function of the levels, the slide's mpp and a tissue mask. */
export function planTileGrid(levels: readonly SlideLevel[], slideMpp: number, mask: TissueMask, options: TileGridOptions = {}): TileGrid {
  const { tileSize = DEFAULT_TILE_SIZE, mpp = DEFAULT_MPP, minTissue = DEFAULT_MIN_TISSUE, overlap = 0 } = options;
  if (!(slideMpp > 0 && mpp > 0 && tileSize > 0 && overlap >= 0 && overlap < tileSize)) {
    throw new RangeError(`bad tile grid parameters (slide ${slideMpp} µm/px, target ${mpp} µm/px, ${tileSize} px, overlap ${overlap} px)`);
  }
  const l0 = levels[0];
  const tile0 = Math.max(1, Math.round((tileSize * mpp) / slideMpp));
  const stride0 = Math.max(1, Math.round(((tileSize - overlap) * mpp) / slideMpp));
  const span = (side: number) => (side < tile0 ? 0 : Math.floor((side - tile0) / stride0) + 1);
  const cols = span(l0.width), rows = span(l0.height);
  const level = chooseLevel(levels, tile0, tileSize);
  const levelScaleX = level.width / l0.width, levelScaleY = level.height / l0.height;
  const tiles: TileRect[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = c * stride0, y = r * stride0;
      const tissue = tissueFraction(mask, x, y, tile0, tile0);
      if (tissue >= minTissue) tiles.push({ index: r * cols + c, x, y, w: tile0, h: tile0, tissue: Math.round(tissue * 1000) / 1000 });
    }
  }
  const exact = Math.abs(tile0 * levelScaleX - tileSize) < 0.5 && Math.abs(tile0 * levelScaleY - tileSize) < 0.5;
  return { tileSize, mpp, slideMpp, tile0, ...(stride0 !== tile0 ? { stride0 } : {}), cols, rows, level: level.index, levelScaleX, levelScaleY, resample: !exact, tiles };
}

/** The level-0 rectangle of any grid index (kept or not). */
export function tileRect(grid: Pick<TileGrid, 'cols' | 'rows' | 'tile0' | 'stride0'>, index: number): { x: number; y: number; w: number; h: number } {
  if (!(Number.isInteger(index) && index >= 0 && index < grid.cols * grid.rows)) throw new RangeError(`tile index ${index} outside the ${grid.cols}x${grid.rows} grid`);
  const stride = grid.stride0 ?? grid.tile0;
  return { x: (index % grid.cols) * stride, y: Math.floor(index / grid.cols) * stride, w: grid.tile0, h: grid.tile0 };
}

/** Reads grid tile `index` as RGB [tileSize, tileSize, 3] (HWC), resampled when needed. */
export async function readTile(source: SlideSource, grid: TileGrid, index: number, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
  const { x, y, w, h } = tileRect(grid, index);
  const lx = x * grid.levelScaleX, ly = y * grid.levelScaleY, lw = w * grid.levelScaleX, lh = h * grid.levelScaleY;
  if (!grid.resample) {
    const r = await source.readRegion(grid.level, Math.round(lx), Math.round(ly), grid.tileSize, grid.tileSize, options);
    return r.data;
  }
  const x0 = Math.floor(lx), y0 = Math.floor(ly);
  const rw = Math.ceil(lx + lw) - x0, rh = Math.ceil(ly + lh) - y0;
  const r = await source.readRegion(grid.level, x0, y0, rw, rh, options);
  return resampleRect(r.data, rw, rh, lx - x0, ly - y0, lw, lh, grid.tileSize);
}

export interface SlidePlan {
  grid: TileGrid;
  mask: TissueMask;
}

/** Detects tissue and plans the tile grid of an open slide. Needs the slide's µm per pixel. */
export async function planSlide(source: SlideSource, options: TileGridOptions & TissueOptions & { signal?: AbortSignal } = {}): Promise<SlidePlan> {
  if (source.mpp === null) {
    throw new SlideError(source.name, 'resolution unknown (no µm per pixel in the file): set it to plan tiles', 'unknown-resolution');
  }
  const mask = await detectTissue(source, options);
  return { grid: planTileGrid(source.levels, source.mpp, mask, options), mask };
}

// The shape of the demo data set's demo.json: written by scripts/make-demo.ts, read by the lab
// (src/lab/dataset.ts). One definition, so writer and reader cannot drift apart.
import type { TileGrid } from './tiles.ts';

export interface DemoSlideEntry {
  slide: string;
  path: string;
  label: 0 | 1;
  split: 'train' | 'val';
  width: number;
  height: number;
  mpp: number;
  tissueTiles: number;
  /** Grid indices holding a planted lesion (ground truth for attention maps); empty for negatives. */
  lesionTiles: number[];
  grid: TileGrid;
}

export interface DemoIndex {
  version: number;
  seed: number;
  count: number;
  tileSize: number;
  mpp: number;
  minTissue: number;
  slides: DemoSlideEntry[];
}

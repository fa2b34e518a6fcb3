// The sampler: one slide per step, K tile slots per slide, split across N ranks. Every rank and
// the main context derive the same plan from (seed, step), so no sampling decision is sent.
import { Rng, Stream, hash32 } from './rng.ts';

export interface SlideEntry {
  /** Stable id (file name or manifest key). */
  id: string;
  label: 0 | 1;
  split: 'train' | 'val';
  /** Number of tissue tiles; tile indices run 0..numTiles-1. */
  numTiles: number;
}

export interface StepPlan {
  step: number;
  epoch: number;
  slide: SlideEntry;
  /** [K] slide tile index for each slot k. With replacement when the slide has fewer than K tiles. */
  tileIndices: Int32Array;
}

/** Order of the training slides in one epoch: a permutation keyed by (seed, epoch). */
export function epochOrder(train: readonly SlideEntry[], seed: number, epoch: number): SlideEntry[] {
  return new Rng(seed, Stream.slideOrder, epoch).shuffle([...train]);
}

/**
 * K tile indices for one slide at one step. With numTiles >= K: K distinct tiles (a partial
 * Fisher-Yates). With fewer: every tile once, then uniform draws with replacement up to K.
 */
export function sampleTiles(numTiles: number, k: number, seed: number, step: number): Int32Array {
  if (numTiles < 1) throw new Error('cannot sample tiles from a slide without tissue tiles');
  const rng = new Rng(seed, Stream.tileList, step);
  const out = new Int32Array(k);
  if (numTiles >= k) {
    const pool = new Int32Array(numTiles);
    for (let i = 0; i < numTiles; i++) pool[i] = i;
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(numTiles - i);
      const t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
      out[i] = pool[i];
    }
    return out;
  }
  const all = rng.shuffle(Array.from({ length: numTiles }, (_, i) => i));
  for (let i = 0; i < k; i++) out[i] = i < numTiles ? all[i] : rng.int(numTiles);
  return out;
}

export class Sampler {
  readonly train: SlideEntry[];
  /**
   * Slides set aside during a run (their tiles could not be read): a step whose slide is set aside
   * trains the next usable slide of that epoch's order instead. The order itself never changes, so
   * the other steps, a resumed run and every rank see the same plans.
   */
  readonly setAside = new Set<string>();
  constructor(slides: readonly SlideEntry[], readonly seed: number, readonly k: number) {
    this.train = slides.filter((s) => s.split === 'train' && s.numTiles > 0);
    if (this.train.length === 0) throw new Error('the data set has no training slide with tissue tiles');
  }

  get stepsPerEpoch(): number {
    return this.train.length;
  }

  /** The plan of global step `step` (0-based): which slide, which K tiles. */
  plan(step: number): StepPlan {
    const epoch = Math.floor(step / this.train.length);
    const order = epochOrder(this.train, this.seed, epoch);
    let i = step % this.train.length;
    for (let tries = 0; this.setAside.size && this.setAside.has(order[i].id); tries++) {
      if (tries >= order.length) throw new Error('every training slide has been set aside: no slide left to train on');
      i = (i + 1) % order.length;
    }
    const slide = order[i];
    return { step, epoch, slide, tileIndices: sampleTiles(slide.numTiles, this.k, this.seed, step) };
  }
}

/** Slots owned by rank r of N: r, r+N, r+2N, ... (as the reference code). Works when N does not divide K. */
export function rankSlots(k: number, rank: number, ranks: number): Int32Array {
  const n = rank < k ? Math.ceil((k - rank) / ranks) : 0;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rank + i * ranks;
  return out;
}

/** A deterministic key for evaluation plans, distinct from any training step. */
export function evalKey(seed: number, slideIndex: number): number {
  return hash32(seed, 0x0e7a1, slideIndex) & 0x7fffffff;
}

/** Keeps `n` slides, the same share of each (split, label) group, in their original order. */
export function stratifiedSubset<T extends { split: string | null; label: number | null }>(items: T[], n: number): T[] {
  if (!n || n >= items.length) return items;
  const groups = new Map<string, T[]>();
  for (const it of items) {
    const key = `${it.split}:${it.label}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(it);
  }
  const keep = new Set<T>();
  for (const g of groups.values()) g.slice(0, Math.max(1, Math.round((g.length * n) / items.length))).forEach((x) => keep.add(x));
  return items.filter((x) => keep.has(x));
}

import { describe, expect, it } from 'vitest';
import { rankSlots, Sampler, sampleTiles, type SlideEntry } from './sampler.ts';
import { augmentFor } from './augment.ts';
import { parseConfig } from './config.ts';

const slides: SlideEntry[] = [
  { id: 'a', label: 0, split: 'train', numTiles: 100 },
  { id: 'b', label: 1, split: 'train', numTiles: 3 },
  { id: 'c', label: 1, split: 'train', numTiles: 40 },
  { id: 'd', label: 0, split: 'val', numTiles: 50 },
];

describe('sampler', () => {
  it('gives every rank the same plan from the seed, and each epoch a permutation of the training slides', () => {
    const a = new Sampler(slides, 7, 16);
    const b = new Sampler(slides, 7, 16);
    for (let step = 0; step < 9; step++) expect(b.plan(step)).toEqual(a.plan(step));
    const epoch0 = [0, 1, 2].map((s) => a.plan(s).slide.id).sort();
    expect(epoch0).toEqual(['a', 'b', 'c']);
    expect(new Sampler(slides, 8, 16).plan(0).tileIndices).not.toEqual(a.plan(0).tileIndices);
  });

  it('samples K distinct tiles when it can, and with replacement (each tile at least once) when it cannot', () => {
    const distinct = sampleTiles(100, 16, 1, 0);
    expect(new Set(distinct).size).toBe(16);
    const few = sampleTiles(3, 16, 1, 0);
    expect(few).toHaveLength(16);
    expect(new Set(few)).toEqual(new Set([0, 1, 2]));
    expect(Math.max(...few)).toBeLessThan(3);
  });

  it('splits K slots across N ranks, also when N does not divide K', () => {
    for (const [k, n] of [[10, 3], [8, 4], [5, 8], [7, 1]]) {
      const all = Array.from({ length: n }, (_, r) => Array.from(rankSlots(k, r, n))).flat().sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: k }, (_, i) => i));
    }
    expect(Array.from(rankSlots(10, 1, 3))).toEqual([1, 4, 7]);
    expect(rankSlots(5, 6, 8)).toHaveLength(0);
  });

  it('keys augmentation by (seed, step, slot), not by rank', () => {
    const cfg = parseConfig({ seed: 3 });
    expect(augmentFor(cfg, 5, 2)).toEqual(augmentFor(cfg, 5, 2));
    const many = Array.from({ length: 64 }, (_, slot) => augmentFor(cfg, 5, slot));
    expect(new Set(many.map((a) => a.rot)).size).toBe(4);
    expect(many.some((a) => a.flip) && many.some((a) => !a.flip)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { bootstrapCurveBand, bootstrapMeanCi, mean, median, movingAverage, quantile } from './stats.ts';
import { Rng } from './rng.ts';

describe('stats', () => {
  it('mean and median of odd, even and empty lists', () => {
    expect(mean([1, 2, 6])).toBe(3);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(mean([])).toBeNaN();
    expect(median([])).toBeNaN();
  });

  it('median leaves its input in order', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });

  it('quantile interpolates between order statistics (type 7)', () => {
    expect(quantile([3, 1, 2, 4], 0)).toBe(1);
    expect(quantile([3, 1, 2, 4], 1)).toBe(4);
    expect(quantile([3, 1, 2, 4], 0.5)).toBe(2.5);
    expect(quantile([10, 20], 0.25)).toBeCloseTo(12.5, 12);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('bootstrapMeanCi: seeded, brackets the mean, narrows with more values, degenerate cases', () => {
    const xs = [0.61, 0.72, 0.55, 0.8, 0.66, 0.7, 0.59];
    const a = bootstrapMeanCi(xs, { seed: 3 });
    expect(bootstrapMeanCi(xs, { seed: 3 })).toEqual(a);
    expect(a.mean).toBeCloseTo(mean(xs), 12);
    expect(a.lower).toBeLessThan(a.mean);
    expect(a.upper).toBeGreaterThan(a.mean);
    expect(a.lower).toBeGreaterThanOrEqual(Math.min(...xs));
    expect(a.upper).toBeLessThanOrEqual(Math.max(...xs));
    expect(a.n).toBe(7);
    const wide = bootstrapMeanCi([0, 1, 0, 1], { seed: 1 });
    const many = bootstrapMeanCi(Array.from({ length: 64 }, (_, i) => i % 2), { seed: 1 });
    expect(many.upper - many.lower).toBeLessThan((wide.upper - wide.lower) / 2);
    expect(bootstrapMeanCi([0.5, NaN], {})).toEqual({ mean: 0.5, lower: 0.5, upper: 0.5, n: 1 });
    expect(bootstrapMeanCi([]).mean).toBeNaN();
  });

  it('bootstrapMeanCi covers the true mean about 95% of the time (normal samples of 20)', () => {
    const rng = new Rng(11);
    let covered = 0;
    const trials = 300;
    for (let t = 0; t < trials; t++) {
      const xs = Array.from({ length: 20 }, () => 1 + 0.5 * rng.normal());
      const ci = bootstrapMeanCi(xs, { seed: t, rounds: 400 });
      if (ci.lower <= 1 && 1 <= ci.upper) covered++;
    }
    // The percentile bootstrap undercovers slightly at n = 20 (about 0.93); 300 trials add +-0.03.
    expect(covered / trials).toBeGreaterThan(0.86);
    expect(covered / trials).toBeLessThan(0.99);
  });

  it('bootstrapCurveBand: pointwise mean of the curves, a band that holds it, zero width for identical curves', () => {
    const same = bootstrapCurveBand([[1, 2, 3], [1, 2, 3], [1, 2, 3]], { seed: 2 });
    expect(same.mean).toEqual([1, 2, 3]);
    expect(same.lower).toEqual([1, 2, 3]);
    expect(same.upper).toEqual([1, 2, 3]);
    const curves = [[0.7, 0.6, 0.5], [0.69, 0.5, 0.3], [0.71, 0.65, 0.6], [0.7, 0.55, 0.4]];
    const b = bootstrapCurveBand(curves, { seed: 2 });
    expect(b.mean[1]).toBeCloseTo(0.575, 12);
    for (let t = 0; t < 3; t++) {
      expect(b.lower[t]).toBeLessThanOrEqual(b.mean[t] + 1e-12);
      expect(b.upper[t]).toBeGreaterThanOrEqual(b.mean[t] - 1e-12);
    }
    // The spread between runs grows along the curve, and so does the band.
    expect(b.upper[2] - b.lower[2]).toBeGreaterThan(5 * (b.upper[0] - b.lower[0]));
    // Unequal lengths: the last index has one curve, so no interval.
    const ragged = bootstrapCurveBand([[1, 2], [3]], { seed: 0 });
    expect(ragged.n).toEqual([2, 1]);
    expect(ragged.mean).toEqual([2, 2]);
    expect(ragged.lower[1]).toBe(2);
  });

  it('movingAverage: trailing window, partial at the start', () => {
    expect(movingAverage([2, 4, 6, 8], 2)).toEqual([2, 3, 5, 7]);
    expect(movingAverage([1, 2, 3], 1)).toEqual([1, 2, 3]);
  });
});

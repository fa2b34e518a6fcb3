import { describe, expect, it } from 'vitest';
import { normalizedL1, rocAuc, rocBootstrap, rocCurve, relativeL2 } from './metrics.ts';

describe('metrics', () => {
  it('computes ROC AUC with ties counted half', () => {
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])).toBe(1);
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])).toBe(0);
    expect(rocAuc([0.5, 0.5], [1, 0])).toBe(0.5);
    expect(rocAuc([0.9, 0.3, 0.6, 0.1], [1, 1, 0, 0])).toBe(0.75);
    expect(rocAuc([0.1], [1])).toBeNaN();
  });

  it('draws the ROC curve from (0,0) to (1,1)', () => {
    const c = rocCurve([0.9, 0.3, 0.6, 0.1], [1, 1, 0, 0]);
    expect(c[0]).toMatchObject({ fpr: 0, tpr: 0 });
    expect(c.at(-1)).toMatchObject({ fpr: 1, tpr: 1 });
    // trapezoid area equals the Mann-Whitney AUC
    let area = 0;
    for (let i = 1; i < c.length; i++) area += ((c[i].fpr - c[i - 1].fpr) * (c[i].tpr + c[i - 1].tpr)) / 2;
    expect(area).toBeCloseTo(0.75, 10);
  });

  it('bootstraps a 95% band that contains the curve', () => {
    const scores = Array.from({ length: 40 }, (_, i) => (i % 2 ? 0.6 : 0.4) + Math.sin(i) * 0.3);
    const labels = scores.map((_, i) => i % 2);
    const band = rocBootstrap(scores, labels, 300, 1);
    const auc = rocAuc(scores, labels);
    expect(band.auc.lower).toBeLessThanOrEqual(auc);
    expect(band.auc.upper).toBeGreaterThanOrEqual(auc);
    expect(band.auc.upper - band.auc.lower).toBeGreaterThan(0.01);
    band.lower.forEach((l, i) => expect(l).toBeLessThanOrEqual(band.upper[i]));
  });

  it('normalises the L1 difference by the reference', () => {
    expect(normalizedL1([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(normalizedL1([2, 2, 3], [1, 2, 3])).toBeCloseTo(1 / 6);
  });
});

describe('relativeL2', () => {
  it('is |a-b|_2 / |b|_2, 0 for equal arrays, and refuses a length mismatch', () => {
    expect(relativeL2([3, 4], [3, 4])).toBe(0);
    expect(relativeL2([0, 0], [3, 4])).toBeCloseTo(1, 12);
    expect(relativeL2([3, 5], [3, 4])).toBeCloseTo(0.2, 12);
    expect(relativeL2([1, 1], [0, 0])).toBeCloseTo(Math.SQRT2, 12);
    expect(() => relativeL2([1], [1, 2])).toThrow(/length/);
  });
});

import { describe, expect, it } from 'vitest';
import { attentionScore, normalizedL1, precisionAtK, rocAuc, rocBootstrap, rocCurve, relativeL2 } from './metrics.ts';

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

describe('attention score', () => {
  it('precision@k counts lesion tiles among the k highest scores', () => {
    const scores = [0.9, 0.1, 0.8, 0.7, 0.2, 0.6, 0.05];
    const lesion = [true, false, false, true, false, true, true];
    expect(precisionAtK(scores, lesion, 3)).toBeCloseTo(2 / 3, 12); // 0.9 (L), 0.8 (-), 0.7 (L)
    expect(precisionAtK(scores, lesion, 1)).toBe(1);
    expect(precisionAtK(scores, lesion, 100)).toBeCloseTo(4 / 7, 12); // k capped at the tile count
    expect(precisionAtK([], [], 5)).toBeNaN();
    expect(() => precisionAtK([1], [true, false])).toThrow(/labels/);
  });

  it('averages per-slide AUC and precision@5 over positive slides with lesions, skipping the rest', () => {
    const perfect = { label: 1 as const, lesionTiles: [10, 11], attention: { tileIndices: [10, 3, 11, 4, 5, 6], scores: [5, 0, 4, 1, 2, 3] } };
    const inverted = { label: 1 as const, lesionTiles: new Set([7]), attention: { tileIndices: [7, 1, 2, 3, 4, 5], scores: [-1, 0, 1, 2, 3, 4] } };
    const negative = { label: 0 as const, lesionTiles: [], attention: { tileIndices: [1, 2], scores: [1, 2] } };
    const unknown = { label: 1 as const, attention: { tileIndices: [1, 2], scores: [1, 2] } };
    const noLesionScored = { label: 1 as const, lesionTiles: [99], attention: { tileIndices: [1, 2], scores: [1, 2] } };
    const r = attentionScore([perfect, inverted, negative, unknown, noLesionScored]);
    expect(r.slides).toBe(2);
    expect(r.aucSlides).toBe(2);
    expect(r.auc).toBeCloseTo((1 + 0) / 2, 12);
    expect(r.precisionAtK).toBeCloseTo((2 / 5 + 0 / 5) / 2, 12);
    expect(r.chance).toBeCloseTo((2 / 6 + 1 / 6) / 2, 12);
    expect(r.k).toBe(5);
  });

  it('counts a tile sampled twice once, and gives NaN without ground truth', () => {
    const dup = { label: 1 as const, lesionTiles: [1], attention: { tileIndices: [1, 1, 2, 3], scores: [3, -9, 2, 1] } };
    const r = attentionScore([dup], 2);
    expect(r.auc).toBe(1);
    expect(r.precisionAtK).toBe(0.5);
    expect(r.chance).toBeCloseTo(1 / 3, 12);
    const none = attentionScore([{ label: 0, attention: { tileIndices: [1], scores: [1] } }]);
    expect(none.slides).toBe(0);
    expect(none.auc).toBeNaN();
    expect(none.precisionAtK).toBeNaN();
  });

  it('is chance-level for random scores (AUC near 0.5, precision near the lesion share)', () => {
    let x = 12345;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    const slides = Array.from({ length: 200 }, () => {
      const tiles = Array.from({ length: 40 }, (_, i) => i);
      return { label: 1 as const, lesionTiles: [0, 1, 2, 3], attention: { tileIndices: tiles, scores: tiles.map(() => rand()) } };
    });
    const r = attentionScore(slides);
    expect(Math.abs(r.auc - 0.5)).toBeLessThan(0.05);
    expect(Math.abs(r.precisionAtK - r.chance)).toBeLessThan(0.04);
    expect(r.chance).toBeCloseTo(0.1, 12);
  });
});

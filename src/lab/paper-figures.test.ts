// The paper-figures experiment at tiny size (in-process ranks, cpu backend): R repeats on Monte
// Carlo splits, paired arms, one pool of warm workers, and the figures' data and CSVs.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../core/tf.ts';
import { parseConfig } from '../core/config.ts';
import { SyntheticTiles } from '../core/tiles.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { loadSynthetic, type DataSet } from './dataset.ts';
import { runPaperFigures } from './paper-figures.ts';
import { FIGURE_IDS, monteCarloSplit, paperFigureCsvs, paperFigureJson, summarizePaperFigures, armsOf, type PaperRun } from './paper-figures-data.ts';

/** CSV text -> records keyed by the header (these CSVs quote nothing). */
const csvRecords = (text: string) => {
  const [h, ...rows] = text.trim().split('\n').map((l) => l.split(','));
  return rows.map((r) => Object.fromEntries(h.map((k, i) => [k, r[i]])));
};

const cfg = parseConfig({
  seed: 5, encoder: { kind: 'tiny-cnn', width: 4 }, tileSize: 16, tiles: 4, microBatch: 2, ranks: 2, epochs: 1,
  optimizer: { lr: 0.003, minLr: 0.003 }, augment: { blur: 0 }, backend: 'cpu', evalTiles: 8,
});

/** Synthetic slides with their lesion tiles as ground truth (what the demo's planted masks give). */
function dataWithLesions(): DataSet {
  const d = loadSynthetic(12, cfg.seed, 16);
  const src = new SyntheticTiles(cfg.seed, d.entries);
  return { ...d, slides: d.slides.map((s) => ({ ...s, lesionTiles: Array.from({ length: s.tissueTiles }, (_, t) => t).filter((t) => src.isLesion(s.id, t)) })) };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('Monte Carlo cross-validation splits', () => {
  const entries = loadSynthetic(20, 3, 8).entries;
  it('stratified by label, the asked share in validation, keyed by (seed, repeat)', () => {
    const a = monteCarloSplit(entries, 3, 0, 0.25);
    const b = monteCarloSplit(entries, 3, 1, 0.25);
    expect(monteCarloSplit(entries, 3, 0, 0.25)).toEqual(a);
    for (const label of [0, 1]) expect(a.filter((e) => e.label === label && e.split === 'val').length).toBe(Math.round(10 * 0.25));
    expect(a.map((e) => e.id)).toEqual(entries.map((e) => e.id));
    expect(a.map((e) => e.split)).not.toEqual(b.map((e) => e.split));
    expect(() => monteCarloSplit(entries, 3, 0, 1)).toThrow(/valFraction/);
  });
});

describe('summarizePaperFigures (pure)', () => {
  const run = (arm: string, k: number, frozen: boolean, repeat: number, auc: number, loss: number): PaperRun => ({
    arm, k, frozenEncoder: frozen, repeat, valSlides: [], steps: 3, losses: [0.7, 0.6, loss], finalTrainLoss: loss, auc, aucLower: auc - 0.1, aucUpper: auc + 0.1,
    scores: [{ slideId: 'a', label: 1, prob: 0.9 }, { slideId: 'b', label: 0, prob: 0.2 }, { slideId: 'c', label: 1, prob: 0.3 }, { slideId: 'd', label: 0, prob: 0.4 }],
    attentionAuc: NaN, precisionAt5: NaN, attentionChance: NaN, attentionSlides: 0, wallMs: 1, reusedRanks: repeat > 0,
  });
  const arms = armsOf([4], [4]);
  const runs = [0, 1, 2].flatMap((r) => [run('e2e K=4', 4, false, r, 0.8 + 0.05 * r, 0.5), run('frozen K=4', 4, true, r, 0.7, 0.6)]);
  const settings = { hash: '', data: 't', slides: 4, repeats: 3, valFraction: 0.5, stepsPerRun: 3, ks: [4], frozenKs: [4], smooth: 2, bootstrapRounds: 500, seed: 1, encoder: 'x' };
  const f = summarizePaperFigures(settings, arms, runs, 10);
  it('means over runs, paired differences, the best run', () => {
    expect(f.arms[0].auc.mean).toBeCloseTo(0.85, 12);
    expect(f.arms[0].auc.lower).toBeGreaterThanOrEqual(0.8 - 1e-12);
    expect(f.arms[0].auc.upper).toBeLessThanOrEqual(0.9 + 1e-12);
    expect(f.arms[1].auc.mean).toBeCloseTo(0.7, 12);
    expect(f.arms[1].auc.upper - f.arms[1].auc.lower).toBeCloseTo(0, 12);
    expect(f.arms[1].auc.n).toBe(3);
    expect(f.e2eVsFrozen[0].difference.mean).toBeCloseTo(0.15, 12);
    expect(f.e2eVsFrozen[0].e2eWins).toBe(3);
    expect(f.best?.arm).toBe('e2e K=4');
    expect(f.best?.repeat).toBe(2);
    expect(f.best?.roc[f.best.roc.length - 1]).toMatchObject({ fpr: 1, tpr: 1 });
    [0.7, 0.65, 0.55].forEach((m, t) => expect(f.arms[0].lossBand.mean[t]).toBeCloseTo(m, 12)); // moving average over 2 steps
  });
  it('CSV and JSON per figure', () => {
    const csv = paperFigureCsvs(f);
    expect(csvRecords(csv.fig4c).map((r) => [r.arm, Number(r.auc_mean).toFixed(3), r.runs])).toEqual([['e2e K=4', '0.850', '3'], ['frozen K=4', '0.700', '3']]);
    expect(csvRecords(csv.fig4a)).toHaveLength(6);
    expect(csvRecords(csv.runs)).toHaveLength(6);
    for (const id of FIGURE_IDS) expect(JSON.stringify(paperFigureJson(f, id)).length).toBeGreaterThan(20);
  });
});

describe('runPaperFigures (in-process ranks)', () => {
  it('R repeats x arms on one warm pool, arms of a repeat on the same split, attention scored where lesions are known', async () => {
    const data = dataWithLesions();
    let made = 0;
    const statuses: string[] = [];
    const f = await runPaperFigures({
      cfg, data, hash: '#test', encoderWeights: undefined,
      makeRanks: (n) => ((made += n), inProcessRanks(n)),
      params: { ks: [4], frozenKs: [4], repeats: 2, steps: 3, valFraction: 0.25, smooth: 2, bootstrapRounds: 100 },
      onStatus: (s) => statuses.push(s),
    });
    expect(made).toBe(2); // one pool of two ranks for all four runs
    expect(f.runs.map((r) => [r.arm, r.repeat, r.steps, r.reusedRanks])).toEqual([
      ['e2e K=4', 0, 3, false], ['frozen K=4', 0, 3, true], ['e2e K=4', 1, 3, true], ['frozen K=4', 1, 3, true],
    ]);
    expect(f.runs[0].valSlides).toEqual(f.runs[1].valSlides);
    expect(f.runs[0].valSlides).not.toEqual(f.runs[2].valSlides);
    expect(f.runs[0].valSlides).toHaveLength(4);
    for (const r of f.runs) {
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(r.auc).toBeGreaterThanOrEqual(0);
      expect(r.auc).toBeLessThanOrEqual(1);
      expect(r.attentionSlides).toBeGreaterThan(0);
      expect(r.attentionAuc).toBeGreaterThanOrEqual(0);
      expect(r.attentionAuc).toBeLessThanOrEqual(1);
    }
    // Frozen and end to end are different runs on the same split.
    expect(f.runs[0].losses[2]).not.toBeCloseTo(f.runs[1].losses[2], 6);
    expect(f.e2eVsFrozen).toHaveLength(1);
    expect(f.e2eVsFrozen[0].pairs).toBe(2);
    expect(f.best).not.toBeNull();
    expect(statuses.some((s) => /repeat 2 of 2, frozen K=4: step 3 of 3/.test(s))).toBe(true);
  }, 60_000);
});

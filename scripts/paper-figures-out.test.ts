// mergePaperFigures: saved parts of one experiment (a process per repeat, the frozen encoder at
// more K later on the same splits) become one set of figures. Pure: no browser.
import { describe, expect, it } from 'vitest';
import { armsOf, summarizePaperFigures, type PaperRun } from '../src/lab/paper-figures-data.ts';
import { mergePaperFigures } from './paper-figures-out.ts';

const run = (k: number, frozen: boolean, repeat: number, auc: number, losses: number[]): PaperRun => ({
  arm: `${frozen ? 'frozen' : 'e2e'} K=${k}`, k, frozenEncoder: frozen, repeat, valSlides: [], steps: losses.length, losses, finalTrainLoss: losses[losses.length - 1], auc, aucLower: auc, aucUpper: auc,
  scores: [{ slideId: 'a', label: 1, prob: 0.9 }, { slideId: 'b', label: 0, prob: 0.2 }],
  attentionAuc: NaN, precisionAt5: NaN, attentionChance: NaN, attentionSlides: 0, wallMs: 1, reusedRanks: false,
});
const settings = { hash: '', data: 't', slides: 4, repeats: 1, valFraction: 0.5, stepsPerRun: 3, smooth: 1, bootstrapRounds: 200, seed: 1, encoder: 'x (PARTIAL: 1 runs)' };
const part = (ks: number[], frozenKs: number[], runs: PaperRun[], wallMs: number) =>
  summarizePaperFigures({ ...settings, ks, frozenKs, repeats: new Set(runs.map((r) => r.repeat)).size }, armsOf(ks, frozenKs), runs, wallMs);

describe('mergePaperFigures', () => {
  // repeat 0 and repeat 1 in their own processes (e2e K=4 and frozen K=4); later the frozen encoder at K=16 on both splits.
  const r0 = part([4], [4], [run(4, false, 0, 0.9, [0.7, 0.5, 0.3]), run(4, true, 0, 0.8, [0.7, 0.6, 0.5])], 100);
  const r1 = part([4], [4], [run(4, false, 1, 0.7, [0.7, 0.6, 0.1]), run(4, true, 1, 0.6, [0.7, 0.6, 0.4])], 200);
  const more = part([], [16], [run(16, true, 0, 1, [0.7, 0.2, 0.1]), run(16, true, 1, 0.5, [0.7, 0.6, 0.6])], 50);

  it('takes the union of the parts\' arms, each (arm, repeat) once, in arm order per repeat; sums the wall times', () => {
    const f = mergePaperFigures([more, r0, r1, r0]); // order of parts and a duplicate must not matter
    expect(f.settings.ks).toEqual([4]);
    expect(f.settings.frozenKs).toEqual([4, 16]);
    expect(f.settings.repeats).toBe(2);
    expect(f.settings.encoder).toBe('x');
    expect(f.arms.map((a) => a.arm)).toEqual(['e2e K=4', 'frozen K=4', 'frozen K=16']);
    expect(f.runs.map((r) => `${r.repeat} ${r.arm}`)).toEqual(['0 e2e K=4', '0 frozen K=4', '0 frozen K=16', '1 e2e K=4', '1 frozen K=4', '1 frozen K=16']);
    expect(f.arms.map((a) => a.auc.mean)).toEqual([0.8, 0.7, 0.75].map((x) => expect.closeTo(x, 12)));
    expect(f.e2eVsFrozen.map((d) => [d.k, d.pairs])).toEqual([[4, 2]]);
    expect(f.wallMs).toBe(450);
  });

  it('smooth N: the final loss is the mean of each run\'s last N steps', () => {
    const f = mergePaperFigures([r0, r1], 2);
    expect(f.runs[0].finalTrainLoss).toBeCloseTo(0.4, 12); // (0.5 + 0.3) / 2
    expect(f.arms[0].finalTrainLoss.mean).toBeCloseTo((0.4 + 0.35) / 2, 12);
    expect(mergePaperFigures([r0, r1]).runs[0].finalTrainLoss).toBe(0.3);
  });

  it('refuses nothing to merge', () => {
    expect(() => mergePaperFigures([])).toThrow(/nothing to merge/);
  });
});

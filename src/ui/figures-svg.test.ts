import { describe, expect, it } from 'vitest';
import { armsOf, summarizePaperFigures, type PaperRun } from '../lab/paper-figures-data.ts';
import { niceTicks, paperFigureSvgs } from './figures-svg.ts';

const run = (arm: string, k: number, frozen: boolean, repeat: number, auc: number): PaperRun => ({
  arm, k, frozenEncoder: frozen, repeat, valSlides: [], steps: 4, losses: [0.7, 0.69, 0.6, 0.5 - k / 1000], finalTrainLoss: 0.5 - k / 1000, auc, aucLower: 0, aucUpper: 1,
  scores: [{ slideId: 'a', label: 1, prob: 0.9 }, { slideId: 'b', label: 0, prob: 0.2 }, { slideId: 'c', label: 1, prob: 0.3 }, { slideId: 'd', label: 0, prob: 0.4 }],
  attentionAuc: 0.8, precisionAt5: 0.4, attentionChance: 0.05, attentionSlides: 2, wallMs: 1, reusedRanks: true,
});

describe('paper figures as SVG', () => {
  const arms = armsOf([4, 16], [16]);
  const runs = [0, 1, 2].flatMap((r) => [run('e2e K=4', 4, false, r, 0.7 + r * 0.05), run('e2e K=16', 16, false, r, 0.8), run('frozen K=16', 16, true, r, 0.75)]);
  const f = summarizePaperFigures({ hash: '', data: 't', slides: 4, repeats: 3, valFraction: 0.5, stepsPerRun: 4, ks: [4, 16], frozenKs: [16], smooth: 2, bootstrapRounds: 200, seed: 1, encoder: 'x' }, arms, runs, 1);
  const svgs = paperFigureSvgs(f);
  it('draws every figure as one well-formed SVG document with its data', () => {
    for (const [id, svg] of Object.entries(svgs)) {
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), id).toBe(true);
      expect(svg.endsWith('</svg>'), id).toBe(true);
      expect(svg).not.toMatch(/NaN|undefined|Infinity/);
      // Every opened element is closed (self-closing or paired).
      const open = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).length;
      const close = (svg.match(/<\/[a-z]+>/g) ?? []).length;
      expect(open, id).toBe(close);
    }
    // Fig. 4a: one band and one line per arm; 4c: the two e2e arms' means (r=4.5) with 3 runs each as dots.
    expect(svgs.fig4a.match(/<polygon /g)).toHaveLength(3);
    expect(svgs.fig4a.match(/<polyline /g)).toHaveLength(3);
    expect(svgs.fig4c.match(/r="4.5"/g)).toHaveLength(2);
    expect(svgs.fig4c.match(/r="2"/g)).toHaveLength(6);
    expect(svgs.fig4d.match(/r="4.5"/g)).toHaveLength(3);
    expect(svgs.fig4d).toContain('frozen encoder');
    expect(svgs.fig5c).toContain(`AUC ${Number(f.best!.auc.toFixed(3))}`);
  });
  it('round tick values', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.31, 0.72, 4)).toEqual([0.4, 0.6]);
    expect(niceTicks(0.31, 0.72, 8)).toEqual([0.4, 0.5, 0.6, 0.7]);
  });
});

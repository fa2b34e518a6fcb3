// The headless runner's paper-figures output: the figures' data as JSON and CSV (all of it and
// per figure), each figure as SVG (drawn here, in Node, from the data) and PNG (the same SVG
// rasterised by the page's canvas), and a summary for the console.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { armsOf, FIGURE_IDS, paperFigureCsvs, paperFigureJson, summarizePaperFigures, type PaperFigures } from '../src/lab/paper-figures-data.ts';
import { mean } from '../src/core/stats.ts';
import { paperFigureSvgs } from '../src/ui/figures-svg.ts';

/** SVG text -> PNG bytes through an <img> and a canvas in the page (scale x the SVG's size). */
async function rasterise(page: Page, svg: string, scale = 2): Promise<Buffer> {
  // A string, not a function: tsx's name helpers (__name) do not exist in the page.
  const dataUrl = (await page.evaluate(`(async () => {
    const svg = ${JSON.stringify(svg)};
    const m = /width="(\\d+)" height="(\\d+)"/.exec(svg);
    const img = new Image();
    await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = () => reject(new Error('the SVG did not load as an image')); img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg); });
    const c = document.createElement('canvas');
    c.width = Math.round(Number(m[1]) * ${scale});
    c.height = Math.round(Number(m[2]) * ${scale});
    c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
    return c.toDataURL('image/png');
  })()`)) as string;
  return Buffer.from(dataUrl.replace(/^data:image\/png;base64,/, ''), 'base64');
}

/**
 * One experiment from several saved paper-figures.json parts (e.g. one process per repeat, and the
 * frozen encoder at more K run later on the same splits): the union of their arms, each (arm,
 * repeat) once (the first part that has it wins), summaries recomputed. `smooth` > 0 also sets the
 * final-loss window to each run's last `smooth` steps. The wall time is the parts' sum (they ran
 * one after another).
 */
export function mergePaperFigures(parts: PaperFigures[], smooth = 0): PaperFigures {
  if (!parts.length) throw new Error('paper figures: nothing to merge');
  const saved = parts[0];
  const union = (pick: (p: PaperFigures) => number[]) => [...new Set(parts.flatMap(pick))].sort((a, b) => a - b);
  const ks = union((p) => p.settings.ks);
  const frozenKs = union((p) => p.settings.frozenKs);
  const arms = armsOf(ks, frozenKs).map((a) => a.name);
  const runs = parts
    .flatMap((p) => p.runs)
    .filter((r, i, all) => all.findIndex((x) => x.arm === r.arm && x.repeat === r.repeat) === i)
    .sort((a, b) => a.repeat - b.repeat || arms.indexOf(a.arm) - arms.indexOf(b.arm))
    .map((r) => (smooth ? { ...r, finalTrainLoss: mean(r.losses.slice(-smooth)) } : r));
  const encoder = saved.settings.encoder.replace(/ \(PARTIAL: \d+ runs\)$/, '');
  const s = { ...saved.settings, ks, frozenKs, encoder, smooth: smooth || saved.settings.smooth, repeats: new Set(runs.map((r) => r.repeat)).size };
  return summarizePaperFigures(s, armsOf(ks, frozenKs), runs, parts.reduce((sum, p) => sum + p.wallMs, 0));
}

/** Writes every file under `dir`; returns their names. */
export async function writePaperFigures(page: Page, dir: string, f: PaperFigures): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const put = (name: string, data: string | Buffer) => {
    writeFileSync(join(dir, name), data);
    written.push(name);
  };
  put('paper-figures.json', JSON.stringify(f, null, 1));
  const csvs = paperFigureCsvs(f);
  put('runs.csv', csvs.runs);
  put('attention.csv', csvs.attention);
  const svgs = paperFigureSvgs(f);
  for (const id of FIGURE_IDS) {
    put(`${id}.csv`, csvs[id]);
    put(`${id}.json`, JSON.stringify(paperFigureJson(f, id), null, 1));
    put(`${id}.svg`, svgs[id]);
    put(`${id}.png`, await rasterise(page, svgs[id]));
  }
  return written;
}

const n3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'NaN');

/** The figures' numbers in words, one line each. */
export function paperFiguresSummary(f: PaperFigures): string[] {
  const s = f.settings;
  const lines = [`${f.runs.length} runs (${s.repeats} per arm, ${s.stepsPerRun} steps each, Monte Carlo splits with ${n3(s.valFraction)} of each label in validation) in ${(f.wallMs / 1000).toFixed(0)} s; encoder ${s.encoder}; data ${s.data} (${s.slides} slides)`];
  for (const a of f.arms) {
    lines.push(
      `${a.arm}: final train loss ${n3(a.finalTrainLoss.mean)} (95% CI ${n3(a.finalTrainLoss.lower)}-${n3(a.finalTrainLoss.upper)}), val AUC ${n3(a.auc.mean)} (${n3(a.auc.lower)}-${n3(a.auc.upper)}), attention AUC ${n3(a.attentionAuc.mean)} (${n3(a.attentionAuc.lower)}-${n3(a.attentionAuc.upper)}), precision@5 ${n3(a.precisionAt5.mean)} (chance ${n3(a.attentionChance)}); runs' AUCs ${f.runs.filter((r) => r.arm === a.arm).map((r) => n3(r.auc)).join(' ')}`,
    );
  }
  for (const d of f.e2eVsFrozen) lines.push(`K=${d.k}: end to end minus frozen AUC ${n3(d.difference.mean)} (95% CI ${n3(d.difference.lower)}-${n3(d.difference.upper)}), end to end higher in ${d.e2eWins} of ${d.pairs} paired splits`);
  if (f.best) lines.push(`best run: ${f.best.arm} repeat ${f.best.repeat + 1}, AUC ${n3(f.best.auc)} (slide bootstrap ${n3(f.best.band.auc.lower)}-${n3(f.best.band.auc.upper)})`);
  const warm = f.runs.filter((r) => r.reusedRanks).length;
  lines.push(`${warm} of ${f.runs.length} runs on warm (reused) rank workers`);
  return lines;
}

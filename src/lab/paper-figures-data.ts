// The paper figures' data (Campanella et al., Figs. 4a-d, 5b-c) from R repeated runs per arm:
// Monte Carlo cross-validation splits, the runs' summaries, and the figures' series with seeded
// bootstrap intervals, as JSON and one CSV per figure. Pure: no transport, no DOM, no tfjs, so
// the headless runner (Node) and the page share it.
import { attentionScore, rocAuc, rocBootstrap, rocCurve, type RocPoint } from '../core/metrics.ts';
import { Rng, Stream } from '../core/rng.ts';
import type { SlideEntry } from '../core/sampler.ts';
import { bootstrapCurveBand, bootstrapMeanCi, mean, movingAverage, type CurveBand, type MeanCi } from '../core/stats.ts';
import type { EvalSlide } from '../core/report.ts';
import { toCsv } from './export.ts';

/** One arm: K tiles per slide, frozen (pretrained) encoder or end-to-end fine-tuning. */
export interface PaperArm {
  /** "e2e K=16" or "frozen K=16". */
  name: string;
  k: number;
  frozenEncoder: boolean;
}

export function armsOf(ks: readonly number[], frozenKs: readonly number[]): PaperArm[] {
  return [
    ...ks.map((k) => ({ name: `e2e K=${k}`, k, frozenEncoder: false })),
    ...frozenKs.map((k) => ({ name: `frozen K=${k}`, k, frozenEncoder: true })),
  ];
}

/**
 * Monte Carlo cross-validation: a fresh train/validation split of the usable slides for repeat
 * `repeat`, stratified by label (each label keeps `valFraction` of its slides in validation,
 * at least one when it has two or more). Keyed by (seed, repeat): every arm of a repeat sees the
 * same split, so arms are compared on paired data.
 */
export function monteCarloSplit(entries: readonly SlideEntry[], seed: number, repeat: number, valFraction: number): SlideEntry[] {
  if (!(valFraction > 0 && valFraction < 1)) throw new Error(`valFraction must be in (0, 1), got ${valFraction}`);
  const rng = new Rng(seed, Stream.slideOrder, 0x3cc5, repeat);
  const val = new Set<string>();
  for (const label of [0, 1] as const) {
    const ids = rng.shuffle(entries.filter((e) => e.label === label).map((e) => e.id));
    const n = ids.length >= 2 ? Math.min(ids.length - 1, Math.max(1, Math.round(ids.length * valFraction))) : 0;
    for (const id of ids.slice(0, n)) val.add(id);
  }
  return entries.map((e) => ({ ...e, split: val.has(e.id) ? 'val' : 'train' }));
}

/** The validation share of a data set's own split (the default MCCV fraction). */
export function valShare(entries: readonly SlideEntry[]): number {
  return entries.length ? entries.filter((e) => e.split === 'val').length / entries.length : 0.25;
}

/** One run of one arm on one repeat's split. */
export interface PaperRun {
  arm: string;
  k: number;
  frozenEncoder: boolean;
  repeat: number;
  /** Validation slide ids of this repeat's split. */
  valSlides: string[];
  steps: number;
  /** Training loss per step. */
  losses: number[];
  /** Mean training loss over the last `lossWindow` steps. */
  finalTrainLoss: number;
  /** Validation AUC and its bootstrap interval (resampling the validation slides). */
  auc: number;
  aucLower: number;
  aucUpper: number;
  /** Validation probabilities. */
  scores: { slideId: string; label: 0 | 1; prob: number }[];
  /** Attention AUC (lesion vs other tiles, positive validation slides with ground truth) and precision@5; NaN without ground truth. */
  attentionAuc: number;
  precisionAt5: number;
  attentionChance: number;
  attentionSlides: number;
  wallMs: number;
  reusedRanks: boolean;
}

/** Summarises a finished run's last validation (probabilities and attention) into a PaperRun. */
export function paperRun(
  arm: PaperArm,
  repeat: number,
  valSlides: string[],
  losses: number[],
  lossWindow: number,
  evalSlides: readonly EvalSlide[],
  lesionTiles: (slideId: string) => readonly number[] | undefined,
  seed: number,
  extra: { wallMs: number; reusedRanks: boolean; bootstrapRounds?: number },
): PaperRun {
  const probs = evalSlides.map((s) => s.prob);
  const labels = evalSlides.map((s) => s.label);
  const band = rocBootstrap(probs, labels, extra.bootstrapRounds ?? 200, seed);
  const att = attentionScore(evalSlides.map((s) => ({ label: s.label, attention: s.attention, lesionTiles: lesionTiles(s.slideId) })), 5);
  return {
    arm: arm.name, k: arm.k, frozenEncoder: arm.frozenEncoder, repeat, valSlides, steps: losses.length, losses,
    finalTrainLoss: mean(losses.slice(-Math.max(1, lossWindow))),
    auc: rocAuc(probs, labels), aucLower: band.auc.lower, aucUpper: band.auc.upper,
    scores: evalSlides.map((s) => ({ slideId: s.slideId, label: s.label, prob: s.prob })),
    attentionAuc: att.auc, precisionAt5: att.precisionAtK, attentionChance: att.chance, attentionSlides: att.slides,
    wallMs: extra.wallMs, reusedRanks: extra.reusedRanks,
  };
}

/** An arm's figure values: mean over its R runs with a bootstrap interval over the runs. */
export interface ArmSummary {
  arm: string;
  k: number;
  frozenEncoder: boolean;
  runs: number;
  finalTrainLoss: MeanCi;
  auc: MeanCi;
  attentionAuc: MeanCi;
  precisionAt5: MeanCi;
  attentionChance: number;
  /** Fig. 4a: the loss curve (moving average over `smooth` steps) with its band over runs. */
  lossBand: CurveBand;
}

export interface PaperFiguresSettings {
  /** The lab hash of the base configuration (the arms override K and frozenEncoder). */
  hash: string;
  data: string;
  slides: number;
  repeats: number;
  valFraction: number;
  stepsPerRun: number;
  ks: number[];
  frozenKs: number[];
  /** Steps of the trailing moving average in Fig. 4a, and of the final-loss window. */
  smooth: number;
  bootstrapRounds: number;
  seed: number;
  encoder: string;
}

export interface PaperFigures {
  kind: 'slide-lab-paper-figures';
  version: 1;
  settings: PaperFiguresSettings;
  runs: PaperRun[];
  arms: ArmSummary[];
  /** Fig. 4d / 5b: per K run in both modes, end to end minus frozen (paired by repeat). */
  e2eVsFrozen: { k: number; frozen: MeanCi; e2e: MeanCi; difference: MeanCi; e2eWins: number; pairs: number }[];
  /** Fig. 5c: the best run (highest validation AUC, then lowest final loss) with its ROC band over slides. */
  best: { arm: string; repeat: number; auc: number; roc: RocPoint[]; band: ReturnType<typeof rocBootstrap> } | null;
  /** Wall time of the whole experiment (ms). */
  wallMs: number;
}

/** All figures' data from the runs. */
export function summarizePaperFigures(settings: PaperFiguresSettings, arms: readonly PaperArm[], runs: readonly PaperRun[], wallMs: number): PaperFigures {
  const b = { rounds: settings.bootstrapRounds, seed: settings.seed };
  const summaries: ArmSummary[] = arms.map((arm, i) => {
    const rs = runs.filter((r) => r.arm === arm.name);
    const chance = mean(rs.map((r) => r.attentionChance).filter(Number.isFinite));
    return {
      arm: arm.name, k: arm.k, frozenEncoder: arm.frozenEncoder, runs: rs.length,
      finalTrainLoss: bootstrapMeanCi(rs.map((r) => r.finalTrainLoss), { ...b, seed: b.seed + 10 * i }),
      auc: bootstrapMeanCi(rs.map((r) => r.auc), { ...b, seed: b.seed + 10 * i + 1 }),
      attentionAuc: bootstrapMeanCi(rs.map((r) => r.attentionAuc), { ...b, seed: b.seed + 10 * i + 2 }),
      precisionAt5: bootstrapMeanCi(rs.map((r) => r.precisionAt5), { ...b, seed: b.seed + 10 * i + 3 }),
      attentionChance: chance,
      lossBand: bootstrapCurveBand(rs.map((r) => movingAverage(r.losses, settings.smooth)), { ...b, seed: b.seed + 10 * i + 4 }),
    };
  });
  const e2eVsFrozen: PaperFigures['e2eVsFrozen'] = [];
  for (const k of settings.ks.filter((k) => settings.frozenKs.includes(k))) {
    const fr = runs.filter((r) => r.k === k && r.frozenEncoder);
    const e2 = runs.filter((r) => r.k === k && !r.frozenEncoder);
    const pairs = e2.flatMap((e) => {
      const f = fr.find((x) => x.repeat === e.repeat);
      return f && Number.isFinite(e.auc) && Number.isFinite(f.auc) ? [e.auc - f.auc] : [];
    });
    e2eVsFrozen.push({
      k,
      // The arms' own intervals, so that Fig. 4d and Fig. 4c / the table quote the same numbers.
      frozen: summaries.find((a) => a.k === k && a.frozenEncoder)!.auc,
      e2e: summaries.find((a) => a.k === k && !a.frozenEncoder)!.auc,
      difference: bootstrapMeanCi(pairs, { ...b, seed: b.seed + 3000 + k }),
      e2eWins: pairs.filter((d) => d > 0).length,
      pairs: pairs.length,
    });
  }
  const ranked = runs.filter((r) => Number.isFinite(r.auc)).sort((x, y) => y.auc - x.auc || x.finalTrainLoss - y.finalTrainLoss);
  const top = ranked[0];
  const best = top
    ? (() => {
        const probs = top.scores.map((s) => s.prob);
        const labels = top.scores.map((s) => s.label);
        return { arm: top.arm, repeat: top.repeat, auc: top.auc, roc: rocCurve(probs, labels), band: rocBootstrap(probs, labels, settings.bootstrapRounds, settings.seed) };
      })()
    : null;
  return { kind: 'slide-lab-paper-figures', version: 1, settings, runs: [...runs], arms: summaries, e2eVsFrozen, best, wallMs };
}

/** The figure ids, in the paper's order, with what each shows. */
export const FIGURES = {
  fig4a: 'Fig. 4a: training loss by K (moving average, bootstrapped 95% band over runs)',
  fig4b: 'Fig. 4b: final training loss against K (mean, 95% CI over runs)',
  fig4c: 'Fig. 4c: validation AUC against K (mean, 95% CI over runs)',
  fig4d: 'Fig. 4d / 5b: end to end against frozen encoder (validation AUC, mean, 95% CI; runs as dots)',
  fig5c: 'Fig. 5c: ROC of the best run with its bootstrapped 95% band',
} as const;
export type FigureId = keyof typeof FIGURES;
export const FIGURE_IDS = Object.keys(FIGURES) as FigureId[];

const ci = (m: MeanCi) => [m.mean, m.lower, m.upper, m.n];

/** The data behind each figure as CSV (one file per figure), plus every run and the attention scores. */
export function paperFigureCsvs(f: PaperFigures): Record<FigureId | 'runs' | 'attention', string> {
  const fig4a: unknown[][] = [];
  for (const a of f.arms) a.lossBand.mean.forEach((m, t) => fig4a.push([a.arm, a.k, a.frozenEncoder, t + 1, m, a.lossBand.lower[t], a.lossBand.upper[t], a.lossBand.n[t]]));
  const roc = f.best;
  const fig5c: unknown[][] = [];
  if (roc) {
    for (const p of roc.roc) fig5c.push(['curve', p.fpr, p.tpr, '', '', Number.isFinite(p.threshold) ? p.threshold : '']);
    roc.band.fpr.forEach((x, i) => fig5c.push(['band', x, '', roc.band.lower[i], roc.band.upper[i], '']));
  }
  return {
    fig4a: toCsv(['arm', 'k', 'frozen_encoder', 'step', 'loss_mean', 'loss_lower', 'loss_upper', 'runs'], fig4a),
    fig4b: toCsv(['arm', 'k', 'frozen_encoder', 'final_loss_mean', 'final_loss_lower', 'final_loss_upper', 'runs'], f.arms.map((a) => [a.arm, a.k, a.frozenEncoder, ...ci(a.finalTrainLoss)])),
    fig4c: toCsv(['arm', 'k', 'frozen_encoder', 'auc_mean', 'auc_lower', 'auc_upper', 'runs'], f.arms.map((a) => [a.arm, a.k, a.frozenEncoder, ...ci(a.auc)])),
    fig4d: toCsv(
      ['k', 'frozen_auc_mean', 'frozen_auc_lower', 'frozen_auc_upper', 'frozen_runs', 'e2e_auc_mean', 'e2e_auc_lower', 'e2e_auc_upper', 'e2e_runs', 'diff_mean', 'diff_lower', 'diff_upper', 'pairs', 'e2e_wins'],
      f.e2eVsFrozen.map((d) => [d.k, ...ci(d.frozen), ...ci(d.e2e), d.difference.mean, d.difference.lower, d.difference.upper, d.pairs, d.e2eWins]),
    ),
    fig5c: toCsv(['series', 'fpr', 'tpr', 'tpr_lower', 'tpr_upper', 'threshold'], fig5c),
    runs: toCsv(
      ['arm', 'k', 'frozen_encoder', 'repeat', 'steps', 'final_train_loss', 'auc', 'auc_lower', 'auc_upper', 'attention_auc', 'precision_at_5', 'attention_chance', 'attention_slides', 'wall_ms', 'reused_ranks', 'val_slides'],
      f.runs.map((r) => [r.arm, r.k, r.frozenEncoder, r.repeat, r.steps, r.finalTrainLoss, r.auc, r.aucLower, r.aucUpper, r.attentionAuc, r.precisionAt5, r.attentionChance, r.attentionSlides, r.wallMs, r.reusedRanks, r.valSlides.join(' ')]),
    ),
    attention: toCsv(
      ['arm', 'k', 'frozen_encoder', 'attention_auc_mean', 'attention_auc_lower', 'attention_auc_upper', 'runs', 'precision_at_5_mean', 'precision_at_5_lower', 'precision_at_5_upper', 'runs_p5', 'chance_precision'],
      f.arms.map((a) => [a.arm, a.k, a.frozenEncoder, ...ci(a.attentionAuc), ...ci(a.precisionAt5), a.attentionChance]),
    ),
  };
}

/** The data behind one figure as JSON (what its CSV holds, structured). */
export function paperFigureJson(f: PaperFigures, id: FigureId): unknown {
  const arms = (pick: (a: ArmSummary) => unknown) => f.arms.map((a) => ({ arm: a.arm, k: a.k, frozenEncoder: a.frozenEncoder, runs: a.runs, ...(pick(a) as object) }));
  switch (id) {
    case 'fig4a':
      return { title: FIGURES.fig4a, smooth: f.settings.smooth, arms: arms((a) => ({ band: a.lossBand })) };
    case 'fig4b':
      return { title: FIGURES.fig4b, arms: arms((a) => ({ finalTrainLoss: a.finalTrainLoss, values: f.runs.filter((r) => r.arm === a.arm).map((r) => r.finalTrainLoss) })) };
    case 'fig4c':
      return { title: FIGURES.fig4c, arms: arms((a) => ({ auc: a.auc, values: f.runs.filter((r) => r.arm === a.arm).map((r) => r.auc), attentionAuc: a.attentionAuc, precisionAt5: a.precisionAt5, attentionChance: a.attentionChance })) };
    case 'fig4d':
      return { title: FIGURES.fig4d, comparisons: f.e2eVsFrozen };
    case 'fig5c':
      return { title: FIGURES.fig5c, best: f.best };
  }
}

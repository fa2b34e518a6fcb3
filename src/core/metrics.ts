// Slide-level metrics: ROC AUC (Mann-Whitney, ties counted half), the ROC curve, and a
// bootstrapped confidence band. Pure functions.
import { Rng, Stream } from './rng.ts';

/** Area under the ROC curve; NaN when one class is missing. */
export function rocAuc(scores: readonly number[], labels: readonly number[]): number {
  const pos = scores.filter((_, i) => labels[i] === 1);
  const neg = scores.filter((_, i) => labels[i] !== 1);
  if (!pos.length || !neg.length) return NaN;
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (pos.length * neg.length);
}

export interface RocPoint {
  fpr: number;
  tpr: number;
  threshold: number;
}

/** ROC curve points from (0,0) to (1,1), thresholds descending. */
export function rocCurve(scores: readonly number[], labels: readonly number[]): RocPoint[] {
  const order = scores.map((s, i) => [s, labels[i]] as const).sort((a, b) => b[0] - a[0]);
  const P = labels.filter((l) => l === 1).length;
  const N = labels.length - P;
  const out: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: Infinity }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < order.length; i++) {
    if (order[i][1] === 1) tp++;
    else fp++;
    if (i === order.length - 1 || order[i + 1][0] !== order[i][0]) out.push({ fpr: N ? fp / N : 0, tpr: P ? tp / P : 0, threshold: order[i][0] });
  }
  return out;
}

/**
 * Bootstrapped 95% band of the ROC curve: the TPR quantiles at fixed FPR grid points over
 * `rounds` resamples of slides (keyed by seed), plus the AUC interval.
 */
export function rocBootstrap(scores: readonly number[], labels: readonly number[], rounds = 200, seed = 0, grid = 21) {
  const rng = new Rng(seed, Stream.bootstrap);
  const fprs = Array.from({ length: grid }, (_, i) => i / (grid - 1));
  const tprs: number[][] = fprs.map(() => []);
  const aucs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const idx = scores.map(() => rng.int(scores.length));
    const s = idx.map((i) => scores[i]);
    const l = idx.map((i) => labels[i]);
    const auc = rocAuc(s, l);
    if (Number.isNaN(auc)) continue;
    aucs.push(auc);
    const curve = rocCurve(s, l);
    fprs.forEach((f, g) => tprs[g].push(interpolateTpr(curve, f)));
  }
  const q = (a: number[], p: number) => {
    if (!a.length) return NaN;
    const sorted = [...a].sort((x, y) => x - y);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))];
  };
  return {
    fpr: fprs,
    lower: tprs.map((t) => q(t, 0.025)),
    upper: tprs.map((t) => q(t, 0.975)),
    auc: { lower: q(aucs, 0.025), upper: q(aucs, 0.975), rounds: aucs.length },
  };
}

function interpolateTpr(curve: RocPoint[], fpr: number): number {
  let best = 0;
  for (const p of curve) if (p.fpr <= fpr) best = Math.max(best, p.tpr);
  return best;
}

/** Normalised L1 difference |a - b|_1 / |b|_1 (the paper's equivalence figure). */
export function normalizedL1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += Math.abs(a[i] - b[i]);
    den += Math.abs(b[i]);
  }
  return den === 0 ? num : num / den;
}

/** Relative L2 difference |a-b|_2 / |b|_2 (|a-b|_2 when b is all zeros): how far a is from the reference b. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Lesion ground truth of one slide's attention: tile indices that hold a lesion. */
export interface AttentionSlide {
  label: 0 | 1;
  attention: { tileIndices: readonly number[]; scores: readonly number[] };
  /** Slide tile indices with a lesion (planted, or from an annotation file); undefined: no ground truth. */
  lesionTiles?: readonly number[] | ReadonlySet<number>;
}

/** How well attention finds the lesions, over positive slides with ground truth. */
export interface AttentionScore {
  /** Mean over slides of the per-slide AUC of attention, lesion tiles against the others (NaN without a usable slide). */
  auc: number;
  /** Mean over slides of the share of lesion tiles among the k most-attended tiles. */
  precisionAtK: number;
  /** What precision@k would be by chance: mean over slides of the lesion share of the scored tiles. */
  chance: number;
  k: number;
  /** Positive slides scored (with ground truth and at least one lesion tile among the scored tiles). */
  slides: number;
  /** Of those, slides that have both lesion and non-lesion tiles (the AUC averages over these). */
  aucSlides: number;
}

/**
 * One slide's attention as unique tiles: a tile sampled more than once keeps its first score.
 * tileIndices [K], scores [K] -> tiles [U], scores [U].
 */
function uniqueTiles(tileIndices: readonly number[], scores: readonly number[]): { tiles: number[]; scores: number[] } {
  if (tileIndices.length !== scores.length) throw new Error(`attention: ${tileIndices.length} tile indices but ${scores.length} scores`);
  const seen = new Set<number>();
  const tiles: number[] = [];
  const out: number[] = [];
  tileIndices.forEach((t, i) => {
    if (seen.has(t)) return;
    seen.add(t);
    tiles.push(t);
    out.push(scores[i]);
  });
  return { tiles, scores: out };
}

/**
 * Precision@k: the share of lesion tiles among the k highest scores (ties broken by position,
 * first wins). k is capped at the number of tiles. NaN for no tiles.
 */
export function precisionAtK(scores: readonly number[], isLesion: readonly boolean[], k = 5): number {
  if (scores.length !== isLesion.length) throw new Error(`precisionAtK: ${scores.length} scores but ${isLesion.length} labels`);
  const n = Math.min(k, scores.length);
  if (n <= 0) return NaN;
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  let hits = 0;
  for (let i = 0; i < n; i++) if (isLesion[order[i][1]]) hits++;
  return hits / n;
}

/**
 * The attention score of a validation pass: on positive slides with lesion ground truth, the AUC
 * of the attention scores for lesion against non-lesion tiles, and precision@k, each averaged over
 * slides (raw scores are comparable within a slide, not across slides). Slides without ground
 * truth, negatives, and positives none of whose scored tiles hold a lesion are skipped.
 */
export function attentionScore(slides: readonly AttentionSlide[], k = 5): AttentionScore {
  const aucs: number[] = [];
  const precisions: number[] = [];
  const chances: number[] = [];
  for (const s of slides) {
    if (s.label !== 1 || !s.lesionTiles) continue;
    const lesions = s.lesionTiles instanceof Set ? (s.lesionTiles as ReadonlySet<number>) : new Set(s.lesionTiles as readonly number[]);
    const u = uniqueTiles(s.attention.tileIndices, s.attention.scores);
    const isLesion = u.tiles.map((t) => lesions.has(t));
    const hits = isLesion.filter(Boolean).length;
    if (!hits) continue;
    precisions.push(precisionAtK(u.scores, isLesion, k));
    chances.push(hits / u.tiles.length);
    if (hits < u.tiles.length) aucs.push(rocAuc(u.scores, isLesion.map((x) => (x ? 1 : 0))));
  }
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return { auc: avg(aucs), precisionAtK: avg(precisions), chance: avg(chances), k, slides: precisions.length, aucSlides: aucs.length };
}

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

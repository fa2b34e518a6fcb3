// Summary statistics shared by the lab (progress, exports, experiments), the tests and the
// benchmarks. An empty list has no mean or median: NaN, never a thrown error.
import { Rng, Stream } from './rng.ts';

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** The middle value (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---- bootstrap confidence intervals (the paper figures' bands and error bars) -----------------
// Percentile bootstrap, seeded (Rng keyed by (seed, Stream.bootstrap, salt)): the same inputs and
// seed give the same interval on every machine.

/** The p-quantile (0..1) by linear interpolation between order statistics (R's type 7); NaN for an empty list. */
export function quantile(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * Math.min(1, Math.max(0, p));
  const lo = Math.floor(h);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  rounds?: number;
  seed?: number;
  /** Coverage of the interval (default 0.95). */
  level?: number;
}

export interface MeanCi {
  mean: number;
  lower: number;
  upper: number;
  /** Finite values the interval is over. */
  n: number;
}

/**
 * The mean of `xs` with a percentile-bootstrap interval (resampling the values with replacement).
 * Non-finite values are left out; one value gives a zero-width interval; none gives NaN.
 */
export function bootstrapMeanCi(xs: readonly number[], o: BootstrapOptions = {}): MeanCi {
  const v = xs.filter(Number.isFinite);
  const m = mean(v);
  if (v.length < 2) return { mean: m, lower: m, upper: m, n: v.length };
  const rounds = o.rounds ?? 2000;
  const level = o.level ?? 0.95;
  const rng = new Rng(o.seed ?? 0, Stream.bootstrap, 0x3ea);
  const means = new Array<number>(rounds);
  for (let r = 0; r < rounds; r++) {
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[rng.int(v.length)];
    means[r] = s / v.length;
  }
  return { mean: m, lower: quantile(means, (1 - level) / 2), upper: quantile(means, 1 - (1 - level) / 2), n: v.length };
}

export interface CurveBand {
  /** Per index: the mean over the curves that reach it, and the bootstrap interval of that mean. */
  mean: number[];
  lower: number[];
  upper: number[];
  /** Curves that reach each index. */
  n: number[];
}

/**
 * A bootstrapped band around the mean of several curves (curves [R][T], e.g. training loss per
 * step of R repeated runs): each round resamples whole curves with replacement (the runs, not the
 * points, are the independent units), and each index takes the percentile interval of the
 * resampled means. Curves may differ in length: index t averages the curves that reach it.
 */
export function bootstrapCurveBand(curves: readonly (readonly number[])[], o: BootstrapOptions = {}): CurveBand {
  const T = curves.reduce((a, c) => Math.max(a, c.length), 0);
  const R = curves.length;
  const rounds = o.rounds ?? 2000;
  const level = o.level ?? 0.95;
  const rng = new Rng(o.seed ?? 0, Stream.bootstrap, 0xba4d);
  const resampled: number[][] = Array.from({ length: T }, () => []);
  if (R >= 2) {
    for (let r = 0; r < rounds; r++) {
      const pick = Array.from({ length: R }, () => curves[rng.int(R)]);
      for (let t = 0; t < T; t++) {
        let s = 0;
        let n = 0;
        for (const c of pick) if (t < c.length && Number.isFinite(c[t])) (s += c[t]), n++;
        if (n) resampled[t].push(s / n);
      }
    }
  }
  const out: CurveBand = { mean: [], lower: [], upper: [], n: [] };
  for (let t = 0; t < T; t++) {
    const at = curves.map((c) => c[t]).filter((x): x is number => x !== undefined && Number.isFinite(x));
    const m = mean(at);
    out.mean.push(m);
    out.n.push(at.length);
    out.lower.push(at.length >= 2 && resampled[t].length ? quantile(resampled[t], (1 - level) / 2) : m);
    out.upper.push(at.length >= 2 && resampled[t].length ? quantile(resampled[t], 1 - (1 - level) / 2) : m);
  }
  return out;
}

/** A trailing moving average over `window` points (the first points average what exists): a noisy per-step loss, smoothed. */
export function movingAverage(xs: readonly number[], window: number): number[] {
  const w = Math.max(1, Math.floor(window));
  const out: number[] = [];
  let s = 0;
  for (let i = 0; i < xs.length; i++) {
    s += xs[i];
    if (i >= w) s -= xs[i - w];
    out.push(s / Math.min(i + 1, w));
  }
  return out;
}

// The paper figures as SVG, drawn from their data by a small framework-free renderer (strings in,
// strings out: the headless runner in Node and the page share it), and an SVG rasterised to PNG
// through a canvas (page only).
import { FIGURES, type FigureId, type PaperFigures } from '../lab/paper-figures-data.ts';

const W = 640;
const H = 400;
const M = { l: 64, r: 170, t: 40, b: 52 };
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const FROZEN = ['#7f7f7f', '#555555', '#aaaaaa', '#333333'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f3 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(3)).toString() : 'NaN');

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

interface Frame {
  x: (v: number) => number;
  y: (v: number) => number;
  parts: string[];
}

function frame(title: string, xLabel: string, yLabel: string, xDom: [number, number], yDom: [number, number], xTicks: { v: number; label: string }[]): Frame {
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const x = (v: number) => M.l + ((v - xDom[0]) / (xDom[1] - xDom[0] || 1)) * pw;
  const y = (v: number) => M.t + ph - ((v - yDom[0]) / (yDom[1] - yDom[0] || 1)) * ph;
  const parts = [
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${M.l}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (const t of niceTicks(yDom[0], yDom[1])) {
    parts.push(`<line x1="${M.l}" x2="${M.l + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${M.l - 6}" y="${(y(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${f3(t)}</text>`);
  }
  for (const t of xTicks) parts.push(`<text x="${x(t.v).toFixed(1)}" y="${M.t + ph + 16}" font-size="11" text-anchor="middle">${esc(t.label)}</text>`);
  parts.push(`<text x="${M.l + pw / 2}" y="${H - 12}" font-size="12" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${M.t + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle">${esc(yLabel)}</text>`);
  return { x, y, parts };
}

function legend(parts: string[], items: { name: string; color: string; dash?: boolean }[]): void {
  items.forEach((it, i) => {
    const y = M.t + 10 + i * 18;
    const x = W - M.r + 14;
    parts.push(`<line x1="${x}" x2="${x + 22}" y1="${y}" y2="${y}" stroke="${it.color}" stroke-width="2.5"${it.dash ? ' stroke-dasharray="5 3"' : ''}/>`);
    parts.push(`<text x="${x + 28}" y="${y + 4}" font-size="11">${esc(it.name)}</text>`);
  });
}

const wrap = (parts: string[], title: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif"><title>${esc(title)}</title>${parts.join('')}</svg>`;

const finite = (xs: number[]) => xs.filter(Number.isFinite);

function domain(values: number[], pad = 0.05, clamp?: [number, number]): [number, number] {
  const v = finite(values);
  if (!v.length) return clamp ?? [0, 1];
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  const span = hi - lo || Math.abs(hi) || 1;
  lo -= span * pad;
  hi += span * pad;
  if (clamp) (lo = Math.max(clamp[0], lo)), (hi = Math.min(clamp[1], hi));
  return [lo, hi];
}

export interface BandSeries {
  name: string;
  color: string;
  dash?: boolean;
  xs: number[];
  mean: number[];
  lower?: number[];
  upper?: number[];
  /** Draw as a step function (ROC). */
  step?: boolean;
}

/** Lines with shaded bands (Fig. 4a, Fig. 5c). */
export function svgLineBands(o: { title: string; xLabel: string; yLabel: string; series: BandSeries[]; xDomain?: [number, number]; yDomain?: [number, number]; diagonal?: boolean; note?: string }): string {
  const xs = o.series.flatMap((s) => s.xs);
  const ys = o.series.flatMap((s) => [...s.mean, ...(s.lower ?? []), ...(s.upper ?? [])]);
  const xDom = o.xDomain ?? domain(xs, 0);
  const yDom = o.yDomain ?? domain(ys);
  const fr = frame(o.title, o.xLabel, o.yLabel, xDom, yDom, niceTicks(xDom[0], xDom[1]).map((v) => ({ v, label: f3(v) })));
  const { x, y, parts } = fr;
  if (o.diagonal) parts.push(`<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4 4"/>`);
  const path = (px: number[], py: number[], step = false) => {
    const pts: string[] = [];
    px.forEach((v, i) => {
      if (!Number.isFinite(py[i])) return;
      if (step && pts.length) pts.push(`${x(v).toFixed(1)},${y(py[i - 1]).toFixed(1)}`);
      pts.push(`${x(v).toFixed(1)},${y(py[i]).toFixed(1)}`);
    });
    return pts;
  };
  for (const s of o.series) {
    if (s.lower && s.upper) {
      const top = path(s.xs, s.upper);
      const bottom = path(s.xs, s.lower).reverse();
      if (top.length > 1) parts.push(`<polygon points="${[...top, ...bottom].join(' ')}" fill="${s.color}" fill-opacity="0.18" stroke="none"/>`);
    }
  }
  for (const s of o.series) {
    const pts = path(s.xs, s.mean, s.step);
    if (pts.length) parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5 3"' : ''}/>`);
  }
  legend(parts, o.series);
  if (o.note) parts.push(`<text x="${W - M.r + 14}" y="${H - M.b}" font-size="10" fill="#555">${esc(o.note)}</text>`);
  return wrap(parts, o.title);
}

export interface CiPoint {
  /** Index into the categories. */
  cat: number;
  mean: number;
  lower: number;
  upper: number;
  /** The runs' values, drawn as small dots. */
  values?: number[];
}

/** Means with 95% CI error bars at categorical x positions (K values, arms), runs as dots (Fig. 4b-d). */
export function svgPointsCi(o: { title: string; xLabel: string; yLabel: string; categories: string[]; series: { name: string; color: string; dash?: boolean; points: CiPoint[] }[]; yDomain?: [number, number]; refLine?: { y: number; label: string } }): string {
  const ys = o.series.flatMap((s) => s.points.flatMap((p) => [p.mean, p.lower, p.upper, ...(p.values ?? [])]));
  const yDom = o.yDomain ?? domain([...ys, ...(o.refLine ? [o.refLine.y] : [])], 0.1);
  const n = o.categories.length;
  const { x, y, parts } = frame(o.title, o.xLabel, o.yLabel, [-0.6, n - 0.4], yDom, o.categories.map((label, v) => ({ v, label })));
  if (o.refLine) {
    parts.push(`<line x1="${x(-0.6)}" x2="${x(n - 0.4)}" y1="${y(o.refLine.y).toFixed(1)}" y2="${y(o.refLine.y).toFixed(1)}" stroke="#999" stroke-dasharray="4 4"/>`);
    parts.push(`<text x="${x(n - 0.4) - 4}" y="${(y(o.refLine.y) - 4).toFixed(1)}" font-size="10" text-anchor="end" fill="#777">${esc(o.refLine.label)}</text>`);
  }
  const S = o.series.length;
  o.series.forEach((s, si) => {
    const off = S > 1 ? (si - (S - 1) / 2) * 0.22 : 0;
    const line = s.points.filter((p) => Number.isFinite(p.mean)).map((p) => `${x(p.cat + off).toFixed(1)},${y(p.mean).toFixed(1)}`);
    if (line.length > 1) parts.push(`<polyline points="${line.join(' ')}" fill="none" stroke="${s.color}" stroke-width="1.5"${s.dash ? ' stroke-dasharray="5 3"' : ''}/>`);
    for (const p of s.points) {
      const cx = x(p.cat + off);
      (p.values ?? []).forEach((v, i) => {
        if (Number.isFinite(v)) parts.push(`<circle cx="${(cx + 10 + (i % 4) * 3).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2" fill="${s.color}" fill-opacity="0.45"/>`);
      });
      if (!Number.isFinite(p.mean)) continue;
      if (Number.isFinite(p.lower) && Number.isFinite(p.upper)) {
        parts.push(`<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y(p.lower).toFixed(1)}" y2="${y(p.upper).toFixed(1)}" stroke="${s.color}" stroke-width="2"/>`);
        for (const e of [p.lower, p.upper]) parts.push(`<line x1="${(cx - 5).toFixed(1)}" x2="${(cx + 5).toFixed(1)}" y1="${y(e).toFixed(1)}" y2="${y(e).toFixed(1)}" stroke="${s.color}" stroke-width="2"/>`);
      }
      parts.push(`<circle cx="${cx.toFixed(1)}" cy="${y(p.mean).toFixed(1)}" r="4.5" fill="${s.color}"/>`);
    }
  });
  legend(parts, o.series);
  return wrap(parts, o.title);
}

/** Every paper figure of a finished experiment, as SVG text. */
export function paperFigureSvgs(f: PaperFigures): Record<FigureId, string> {
  const e2e = f.arms.filter((a) => !a.frozenEncoder);
  const frozen = f.arms.filter((a) => a.frozenEncoder);
  const ks = [...new Set(f.arms.map((a) => a.k))].sort((a, b) => a - b);
  const cats = ks.map((k) => `K=${k}`);
  const color = (a: { frozenEncoder: boolean }, i: number) => (a.frozenEncoder ? FROZEN[i % FROZEN.length] : PALETTE[i % PALETTE.length]);
  const runsOf = (arm: string) => f.runs.filter((r) => r.arm === arm);
  const byMode = (pick: (a: PaperFigures['arms'][number]) => { mean: number; lower: number; upper: number }, values: (arm: string) => number[]) =>
    [
      { name: 'end to end', color: PALETTE[0], points: e2e.map((a) => ({ cat: ks.indexOf(a.k), ...pick(a), values: values(a.arm) })) },
      { name: 'frozen encoder', color: FROZEN[0], dash: true, points: frozen.map((a) => ({ cat: ks.indexOf(a.k), ...pick(a), values: values(a.arm) })) },
    ].filter((s) => s.points.length);
  const r = f.settings.repeats;
  const best = f.best;
  return {
    fig4a: svgLineBands({
      title: FIGURES.fig4a.split(':')[0] + ': training loss by K',
      xLabel: 'step',
      yLabel: `training loss (moving average, ${f.settings.smooth} steps)`,
      series: [...e2e.map((a, i) => ({ a, i })), ...frozen.map((a, i) => ({ a, i }))].map(({ a, i }) => ({
        name: `${a.arm} (R=${a.runs})`, color: color(a, i), dash: a.frozenEncoder,
        xs: a.lossBand.mean.map((_, t) => t + 1), mean: a.lossBand.mean, lower: a.lossBand.lower, upper: a.lossBand.upper,
      })),
      note: '95% bootstrap band over runs',
    }),
    fig4b: svgPointsCi({ title: 'Fig. 4b: final training loss against K', xLabel: 'tiles per slide K', yLabel: 'final training loss', categories: cats, series: byMode((a) => a.finalTrainLoss, (arm) => runsOf(arm).map((x) => x.finalTrainLoss)), refLine: { y: Math.LN2, label: 'ln 2' } }),
    fig4c: svgPointsCi({ title: 'Fig. 4c: validation AUC against K', xLabel: 'tiles per slide K', yLabel: `validation AUC (mean, 95% CI, R=${r})`, categories: cats, series: byMode((a) => a.auc, (arm) => runsOf(arm).map((x) => x.auc)).filter((s) => s.name === 'end to end' || !e2e.length), yDomain: [0, 1.02], refLine: { y: 0.5, label: 'chance' } }),
    fig4d: svgPointsCi({
      title: 'Fig. 4d / 5b: end to end against frozen', xLabel: 'tiles per slide K', yLabel: `validation AUC (mean, 95% CI, R=${r})`,
      categories: cats, series: byMode((a) => a.auc, (arm) => runsOf(arm).map((x) => x.auc)), yDomain: [0, 1.02], refLine: { y: 0.5, label: 'chance' },
    }),
    fig5c: best
      ? svgLineBands({
          title: 'Fig. 5c: ROC of the best run',
          xLabel: 'false positive rate', yLabel: 'true positive rate', xDomain: [0, 1], yDomain: [0, 1.02], diagonal: true,
          series: [
            { name: `band (bootstrap, ${best.band.auc.rounds})`, color: '#9ecae1', xs: best.band.fpr, mean: best.band.fpr.map(() => NaN), lower: best.band.lower, upper: best.band.upper },
            { name: `${best.arm} #${best.repeat + 1}: AUC ${f3(best.auc)}`, color: PALETTE[0], xs: best.roc.map((p) => p.fpr), mean: best.roc.map((p) => p.tpr) },
          ],
          note: `AUC 95% CI ${f3(best.band.auc.lower)}-${f3(best.band.auc.upper)}`,
        })
      : svgPointsCi({ title: 'Fig. 5c: no run with both classes in validation', xLabel: '', yLabel: '', categories: [], series: [] }),
  };
}

/** Rasterises SVG text to a PNG blob through a canvas at `scale` (page only). */
export async function svgToPng(svg: string, scale = 2): Promise<Blob> {
  const m = /width="(\d+)" height="(\d+)"/.exec(svg);
  const w = Number(m?.[1] ?? W);
  const h = Number(m?.[2] ?? H);
  const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error('the figure SVG could not be drawn as an image'));
      img.src = url;
    });
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas for the PNG export');
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    return await new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the canvas gave no PNG'))), 'image/png'));
  } finally {
    URL.revokeObjectURL(url);
  }
}

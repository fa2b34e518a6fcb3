// The gather/scatter timeline of one step, laid out from its StepReport: one lane per rank and
// one for the main context, every phase as a segment, and the tensors that cross as arrows with
// their shapes and bytes. Pure: the UI draws it, tests check it.
import { PHASES, type Phase, type StepReport } from '../core/report.ts';

export interface Segment {
  /** 'main' or the rank number. */
  lane: 'main' | number;
  phase: Phase;
  start: number;
  ms: number;
}

export interface Arrow {
  phase: 'gather' | 'scatter' | 'reduce' | 'optimizer';
  from: 'main' | number;
  to: 'main' | number;
  at: number;
  shape: string;
  bytes: number;
}

export interface Timeline {
  step: number;
  lanes: ('main' | number)[];
  segments: Segment[];
  arrows: Arrow[];
  totalMs: number;
}

/** One or two sentences per phase, for the teaching mode. */
export const PHASE_TEXT: Record<Phase, string> = {
  decode: 'Each rank reads its share of the K tiles from the slide file and turns them into normalised pixels, with augmentation keyed by (seed, step, tile) so every rank count sees the same inputs.',
  forward: 'Each rank runs its encoder replica on its own tiles without a gradient tape, producing one feature row of size D per tile.',
  gather: 'The feature rows travel to the main context with their tile slots and are put back in tile order as one [K, D] matrix.',
  aggregator: 'The main context runs the gated-attention aggregator on all K features, computes the slide loss and backpropagates to get dL/dFeatures [K, D] and the aggregator\'s gradients; it applies them only after the replicas\' update has succeeded, so a rank fault leaves the aggregator untouched.',
  scatter: 'Each rank gets back only the rows of dL/dFeatures that belong to its tiles.',
  recompute: 'Each rank recomputes its forward pass in fixed micro-batches inside a gradient call with the pseudo-loss sum(features × dL/dFeatures); its gradient is the rank\u2019s share of dL/d(encoder).',
  reduce: 'The ranks\u2019 encoder gradients are summed (not averaged): the sum is exactly the gradient of the single-graph model.',
  optimizer: 'Every replica applies the same AdamW update to the same summed gradient, so the replicas stay identical; a checksum verifies it. Then the main context applies the aggregator\'s AdamW update.',
};

const f32 = 4;

export function bytesLabel(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** Lays out a step; `params` is the encoder parameter count P (from the ranks' info). */
export function buildTimeline(r: StepReport, params: number): Timeline {
  const segments: Segment[] = [];
  const arrows: Arrow[] = [];
  const ranks = r.perRank.map((p) => p.rank);
  let t = 0;
  for (const p of r.perRank) {
    const dec = p.ms.decode ?? 0;
    const fwd = p.ms.forward ?? 0;
    segments.push({ lane: p.rank, phase: 'decode', start: 0, ms: dec }, { lane: p.rank, phase: 'forward', start: dec, ms: fwd });
    t = Math.max(t, dec + fwd);
  }
  const main = (phase: Phase) => {
    const ms = r.main[phase] ?? 0;
    segments.push({ lane: 'main', phase, start: t, ms });
    const start = t;
    t += ms;
    return start;
  };
  const gatherAt = main('gather');
  for (const p of r.perRank) arrows.push({ phase: 'gather', from: p.rank, to: 'main', at: gatherAt, shape: `[${p.tiles}, ${r.d}] f32`, bytes: p.tiles * r.d * f32 });
  main('aggregator');
  if (!r.frozenEncoder) {
    const scatterAt = main('scatter');
    for (const p of r.perRank) arrows.push({ phase: 'scatter', from: 'main', to: p.rank, at: scatterAt + (r.main.scatter ?? 0), shape: `[${p.tiles}, ${r.d}] f32`, bytes: p.tiles * r.d * f32 });
    let slowest = 0;
    for (const p of r.perRank) {
      const ms = p.ms.recompute ?? 0;
      segments.push({ lane: p.rank, phase: 'recompute', start: t, ms });
      slowest = Math.max(slowest, ms);
    }
    t += slowest;
    const reduceAt = main('reduce');
    for (const p of r.perRank) arrows.push({ phase: 'reduce', from: p.rank, to: 'main', at: reduceAt, shape: `[P=${params}] f32`, bytes: params * f32 });
    const optAt = t;
    main('optimizer');
    let opt = 0;
    for (const p of r.perRank) {
      const ms = p.ms.optimizer ?? 0;
      segments.push({ lane: p.rank, phase: 'optimizer', start: optAt, ms });
      arrows.push({ phase: 'optimizer', from: 'main', to: p.rank, at: optAt, shape: `[P=${params}] f32`, bytes: params * f32 });
      opt = Math.max(opt, ms);
    }
    t = Math.max(t, optAt + opt);
  } else {
    main('optimizer');
  }
  return { step: r.step, lanes: ['main', ...ranks], segments, arrows, totalMs: t };
}

/** Phases a lane shows in a step (all of PHASES across main + ranks when training end to end). */
export function phasesIn(tl: Timeline): Set<Phase> {
  return new Set(tl.segments.map((s) => s.phase));
}

export { PHASES };

// ---- Drawing geometry and arrow-label placement (pure, so tests can check every rank count) ----

/** The drawing's geometry in SVG user units. Bars fill each lane but `inset` at top and bottom. */
export interface TimelineGeometry {
  width: number;
  /** Room for the lane names on the left. */
  left: number;
  right: number;
  top: number;
  bottom: number;
  laneH: number;
  inset: number;
  /** Font size of the arrow labels. */
  fontSize: number;
  /** Horizontal step between the arrows of one phase, so they do not draw over each other. */
  arrowStep: number;
  /** Gap between an arrow and its label (less one: the least room between a label and any other arrow). */
  pad: number;
  /** The least room between two labels on one row. */
  labelGap: number;
  /** Arrows closer than this form one cluster (no label fits between them): labels go past it. */
  clusterGap: number;
}

export const TIMELINE_GEOMETRY: TimelineGeometry = { width: 900, left: 70, right: 10, top: 6, bottom: 6, laneH: 50, inset: 12, fontSize: 9, arrowStep: 4, pad: 4, labelGap: 10, clusterGap: 40 };

/** Width of `text` at `fontSize`. */
export type Measure = (text: string, fontSize: number) => number;

/** A fixed per-character estimate (0.6 em: a little wider than system-ui's digits and letters). */
export const estimateTextWidth: Measure = (text, fontSize) => text.length * fontSize * 0.6;

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Whether two boxes share any area (touching edges do not count). */
export function boxesOverlap(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

export interface TimelineFrame {
  height: number;
  /** x of a time in ms. */
  sx(ms: number): number;
  /** Top of a lane. */
  laneY(lane: 'main' | number): number;
  /** x of arrow `i` of tl.arrows. */
  arrowX(i: number): number;
  /** The gap between the bars of lane g and lane g + 1, where the labels go. */
  gutter(g: number): { y0: number; y1: number };
}

export function timelineFrame(tl: Timeline, g: TimelineGeometry = TIMELINE_GEOMETRY): TimelineFrame {
  const span = g.width - g.left - g.right - 3 * g.arrowStep;
  const sx = (ms: number) => g.left + (span * ms) / Math.max(tl.totalMs, 1e-6);
  const laneY = (lane: 'main' | number) => g.top + tl.lanes.indexOf(lane) * g.laneH;
  // Arrows of one phase step right by rank (in fours), so the up and down arrows of ranks stay apart.
  const nth = tl.arrows.map((a, i) => tl.arrows.slice(0, i).filter((b) => b.phase === a.phase).length);
  return {
    height: g.top + tl.lanes.length * g.laneH + g.bottom,
    sx,
    laneY,
    arrowX: (i) => sx(tl.arrows[i].at) + (nth[i] % 4) * g.arrowStep,
    gutter: (k) => ({ y0: g.top + k * g.laneH + g.laneH - g.inset, y1: g.top + (k + 1) * g.laneH + g.inset }),
  };
}

/** The full text of an arrow's label; its tooltip always carries this. */
export const arrowText = (a: Arrow): string => `${a.phase} ${a.shape} · ${bytesLabel(a.bytes)}`;

/**
 * What an arrow's label may shrink to, longest first. With `count` > 1 the label stands for that
 * many ranks' arrows of one phase that carry the same tensor ("8 × gather [2, 32] f32 · 256 B").
 */
export function labelVariants(a: Arrow, count = 1): string[] {
  const n = count > 1 ? `${count} × ` : '';
  const out = [`${n}${arrowText(a)}`, `${n}${a.phase} · ${bytesLabel(a.bytes)}`, `${n}${a.phase}`];
  if (count > 1) out.push(a.phase);
  return out;
}

export interface ArrowLabel {
  /** Index into tl.arrows of the arrow the label sits by. */
  arrow: number;
  /** Every arrow the label stands for (more than one when the ranks' arrows of a phase are alike). */
  arrows: number[];
  text: string;
  /** The longest variant: what the tooltip says when the text is shortened. */
  full: string;
  /** Anchor point: text starts (anchor 'start') or ends ('end') at x; y is its vertical middle. */
  x: number;
  y: number;
  anchor: 'start' | 'end';
  box: Box;
}

export interface LabelPlacement {
  labels: ArrowLabel[];
  /** Arrows that no label stands for (no room): they keep only their tooltip. */
  tooltipOnly: number[];
  /** The arrow lines inside the gutters, as thin boxes (no label covers one). */
  lines: Box[];
}

type Slot = { side: 'start' | 'end'; row: 0 | 1 };
const R0: Slot = { side: 'start', row: 0 }, R1: Slot = { side: 'start', row: 1 }, L0: Slot = { side: 'end', row: 0 }, L1: Slot = { side: 'end', row: 1 };
const PLACEMENT_ORDERS: readonly (readonly Arrow['phase'][])[] = [
  ['gather', 'scatter', 'reduce', 'optimizer'],
  ['reduce', 'optimizer', 'gather', 'scatter'],
  ['reduce', 'optimizer', 'scatter', 'gather'],
];

/** Where each phase's label would rather go: after its arrows (right) or before them (left), upper or lower row. */
const SLOTS: Record<Arrow['phase'], Slot[]> = {
  gather: [R0, R1, L0, L1],
  scatter: [R0, R1, L0, L1],
  reduce: [L0, L1, R0, R1],
  optimizer: [L1, L0, R1, R0],
};

/**
 * Places the arrow labels so that none overlaps another, nor crosses an arrow line, nor leaves the
 * plot. A label sits in the gutter right above its rank's lane (two rows), after or before the
 * cluster of arrows around it; the ranks' arrows of a phase that carry the same tensor share one
 * label under the main lane. When no slot has room a label shrinks (shape dropped, then bytes),
 * and when even the phase name does not fit, it stays in the arrows' tooltips only. Greedy, every
 * label trying its full text first, in the phase order (of a few) that has to shorten least.
 */
export function placeArrowLabels(tl: Timeline, g: TimelineGeometry = TIMELINE_GEOMETRY, measure: Measure = estimateTextWidth): LabelPlacement {
  const f = timelineFrame(tl, g);
  const xs = tl.arrows.map((_, i) => f.arrowX(i));
  const rankOf = (a: Arrow) => (a.from === 'main' ? a.to : a.from);
  const gutterOf = (a: Arrow) => tl.lanes.indexOf(rankOf(a)) - 1;
  // Arrows closer than clusterGap form one cluster: a label goes past the whole cluster.
  const order = xs.map((x, i) => ({ x, i })).sort((a, b) => a.x - b.x);
  const cluster = new Array<{ min: number; max: number }>(xs.length);
  for (let k = 0; k < order.length; ) {
    let j = k;
    while (j + 1 < order.length && order[j + 1].x - order[j].x < g.clusterGap) j++;
    const c = { min: order[k].x, max: order[j].x };
    for (let m = k; m <= j; m++) cluster[order[m].i] = c;
    k = j + 1;
  }
  // An arrow crosses every gutter from the main lane down to its rank's lane.
  const lines: Box[] = [];
  tl.arrows.forEach((a, i) => {
    for (let k = 0; k <= gutterOf(a); k++) {
      const gt = f.gutter(k);
      lines.push({ x0: xs[i] - 0.5, y0: gt.y0, x1: xs[i] + 0.5, y1: gt.y1 });
    }
  });
  const minX = g.left, maxX = g.width - g.right;
  const h = g.fontSize * 1.2;
  // Labels keep labelGap from each other and pad from other arrows' lines, so none reads as one.
  const grow = (b: Box, dx: number): Box => ({ x0: b.x0 - dx, y0: b.y0, x1: b.x1 + dx, y1: b.y1 });
  const greedy = (phases: readonly Arrow['phase'][]) => {
    const labels: ArrowLabel[] = [];
    const tooltipOnly: number[] = [];
    let cost = 0;
    const place = (i: number, arrows: number[]): boolean => {
      const a = tl.arrows[i];
      const gt = f.gutter(gutterOf(a));
      const rowH = (gt.y1 - gt.y0) / 2;
      const variants = labelVariants(a, arrows.length);
      for (const [v, text] of variants.entries()) {
        const w = measure(text, g.fontSize);
        for (const slot of SLOTS[a.phase]) {
          const x = slot.side === 'start' ? cluster[i].max + g.pad : cluster[i].min - g.pad;
          const y = gt.y0 + rowH * (slot.row + 0.5);
          const box = slot.side === 'start' ? { x0: x, y0: y - h / 2, x1: x + w, y1: y + h / 2 } : { x0: x - w, y0: y - h / 2, x1: x, y1: y + h / 2 };
          if (box.x0 < minX || box.x1 > maxX) continue;
          if (labels.some((l) => boxesOverlap(grow(l.box, g.labelGap), box)) || lines.some((l) => boxesOverlap(grow(l, g.pad - 1), box))) continue;
          labels.push({ arrow: i, arrows, text, full: variants[0], x, y, anchor: slot.side, box });
          cost += 4 * v * arrows.length;
          return true;
        }
      }
      return false;
    };
    // One label per phase when all its arrows carry the same tensor, by the rank nearest the main
    // lane; otherwise (or when that finds no room) one label per arrow, by its own rank.
    for (const phase of phases) {
      const group = tl.arrows.map((a, i) => ({ a, i })).filter(({ a }) => a.phase === phase);
      if (!group.length) continue;
      group.sort((p, q) => gutterOf(p.a) - gutterOf(q.a));
      const alike = group.length > 1 && group.every(({ a }) => a.shape === group[0].a.shape && a.bytes === group[0].a.bytes);
      if (alike && place(group[0].i, group.map((p) => p.i).sort((x, y) => x - y))) continue;
      for (const { i } of group) if (!place(i, [i])) tooltipOnly.push(i);
    }
    cost += 20 * tooltipOnly.length;
    return { labels, tooltipOnly, cost };
  };
  // Greedy in a few orders (the squeezed reduce and optimizer first, or last); the least shortening wins.
  const tries = PLACEMENT_ORDERS.map(greedy);
  const { labels, tooltipOnly } = tries.reduce((best, t) => (t.cost < best.cost ? t : best));
  return { labels, tooltipOnly, lines };
}

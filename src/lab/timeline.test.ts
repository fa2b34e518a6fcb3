// The timeline's arrow labels: at every rank count from 1 to 8 and with realistic (and random)
// phase durations, no label overlaps another, crosses an arrow line or leaves the plot.
import { describe, expect, it } from 'vitest';
import type { Phase, StepReport } from '../core/report.ts';
import { arrowText, boxesOverlap, buildTimeline, estimateTextWidth, labelVariants, placeArrowLabels, TIMELINE_GEOMETRY, type Box, type LabelPlacement, type TimelineGeometry, type Measure, type Timeline } from './timeline.ts';

type Ms = Partial<Record<Phase, number>>;

/** A step of K tiles over n ranks; each rank's times vary a little around `rank`. */
function report(n: number, main: Ms, rank: Ms, opts: { k?: number; d?: number; frozen?: boolean; jitter?: (r: number) => number } = {}): StepReport {
  const k = opts.k ?? 16;
  const jitter = opts.jitter ?? ((r: number) => 1 + 0.07 * ((r * 37) % 5));
  return {
    kind: 'step', step: 3, epoch: 0, slideId: 's', label: 1, loss: 0.6, prob: 0.5, lr: 1e-3, weightDecay: 0.04,
    k, ranks: n, d: opts.d ?? 512,
    perRank: Array.from({ length: n }, (_, r) => ({
      rank: r,
      tiles: Math.floor(k / n) + (r < k % n ? 1 : 0),
      ms: Object.fromEntries(Object.entries(rank).map(([p, v]) => [p, v * jitter(r)])),
      numTensors: 10,
      prefetched: false,
    })),
    main, bytes: {}, mainTensors: 5, attention: { tileIndices: [], scores: [] }, replicaDrift: 0, wallMs: 0,
    frozenEncoder: opts.frozen ?? false, reduction: 'star',
  };
}

/** Realistic steps: [name, main ms, per-rank ms, encoder parameters, options]. */
const CASES: [string, Ms, Ms, number, { frozen?: boolean; d?: number }?][] = [
  ['tiny-cnn on SwiftShader', { gather: 1.2, aggregator: 9, scatter: 0.6, reduce: 2.5, optimizer: 1.8 }, { decode: 6, forward: 25, recompute: 70, optimizer: 1.5 }, 2_580, { d: 32 }],
  ['reduce and optimizer tiny next to recompute', { gather: 0.3, aggregator: 2, scatter: 0.2, reduce: 0.1, optimizer: 0.15 }, { decode: 10, forward: 40, recompute: 400, optimizer: 0.2 }, 11_176_512],
  ['everything tiny next to recompute', { gather: 0.05, aggregator: 0.05, scatter: 0.05, reduce: 0.05, optimizer: 0.05 }, { decode: 0.1, forward: 0.1, recompute: 900, optimizer: 0.05 }, 11_176_512],
  ['ResNet-50 fine-tuning', { gather: 3, aggregator: 15, scatter: 2, reduce: 180, optimizer: 60 }, { decode: 40, forward: 300, recompute: 950, optimizer: 55 }, 23_508_032],
  ['ViT-B, communication-bound', { gather: 4, aggregator: 12, scatter: 3, reduce: 400, optimizer: 250 }, { decode: 30, forward: 200, recompute: 500, optimizer: 240 }, 85_798_656, { d: 768 }],
  ['every phase alike', { gather: 10, aggregator: 10, scatter: 10, reduce: 10, optimizer: 10 }, { decode: 10, forward: 10, recompute: 10, optimizer: 10 }, 2_580],
  ['frozen encoder (MIL)', { gather: 2, aggregator: 20, optimizer: 1 }, { decode: 8, forward: 30 }, 11_176_512, { frozen: true }],
];

const grow = (b: Box, dx: number): Box => ({ ...b, x0: b.x0 - dx, x1: b.x1 + dx });

/** Checks every invariant of a placement and returns it. */
function check(tl: Timeline, p: LabelPlacement, measure: Measure = estimateTextWidth, g: TimelineGeometry = TIMELINE_GEOMETRY): LabelPlacement {
  const { labels } = p;
  const bad: string[] = [];
  for (let i = 0; i < labels.length; i++) {
    for (let j = i + 1; j < labels.length; j++) {
      if (boxesOverlap(labels[i].box, labels[j].box)) bad.push(`"${labels[i].text}" overlaps "${labels[j].text}"`);
      // Nor so close on one row that the two read as one.
      else if (boxesOverlap(grow(labels[i].box, g.labelGap - 1e-9), labels[j].box)) bad.push(`"${labels[i].text}" runs into "${labels[j].text}"`);
    }
    if (p.lines.some((line) => boxesOverlap(labels[i].box, grow(line, g.pad - 1 - 1e-9)))) bad.push(`"${labels[i].text}" crosses or touches an arrow`);
    const b = labels[i].box;
    if (b.x0 < g.left || b.x1 > g.width - g.right) bad.push(`"${labels[i].text}" leaves the plot`);
    // The box is as wide as the text it holds, and the text is one of its arrow's variants.
    if (Math.abs(b.x1 - b.x0 - measure(labels[i].text, g.fontSize)) > 1e-6) bad.push(`"${labels[i].text}" is measured wrong`);
    const a = tl.arrows[labels[i].arrow];
    if (!labelVariants(a, labels[i].arrows.length).includes(labels[i].text)) bad.push(`"${labels[i].text}" is not its arrow's`);
    if (!labels[i].full.endsWith(arrowText(a))) bad.push(`"${labels[i].full}" is not its arrow's tooltip`);
    // A shared label stands only for arrows of its phase that carry the same tensor.
    for (const j of labels[i].arrows) if (arrowText(tl.arrows[j]) !== arrowText(a)) bad.push(`"${labels[i].text}" stands for "${arrowText(tl.arrows[j])}"`);
    if (!labels[i].arrows.includes(labels[i].arrow)) bad.push(`"${labels[i].text}" does not stand for its own arrow`);
  }
  expect(bad).toEqual([]);
  // Every arrow has either one label or a tooltip only.
  const labelled = labels.flatMap((l) => l.arrows);
  expect(new Set(labelled).size).toBe(labelled.length);
  expect([...labelled, ...p.tooltipOnly].sort((a, b) => a - b)).toEqual(tl.arrows.map((_, i) => i));
  return p;
}

describe('timeline arrow labels', () => {
  for (const [name, main, rank, params, opts] of CASES) {
    it(`never overlap at 1..8 ranks: ${name}`, () => {
      for (let n = 1; n <= 8; n++) {
        const tl = buildTimeline(report(n, main, rank, opts), params);
        expect(tl.arrows.length).toBe(opts?.frozen ? n : 4 * n);
        const p = check(tl, placeArrowLabels(tl));
        // Each arrow keeps at least its phase name on the drawing at these realistic durations,
        // except where every phase but recompute is a sliver (then some go to their tooltips).
        if (name !== 'everything tiny next to recompute') expect(p.tooltipOnly, `${n} ranks`).toEqual([]);
      }
    });
  }

  it('keeps the reduce and optimizer labels apart when both are slivers after a long recompute', () => {
    for (let n = 1; n <= 8; n++) {
      const tl = buildTimeline(report(n, CASES[1][1], CASES[1][2]), CASES[1][3]);
      const p = check(tl, placeArrowLabels(tl));
      const [reduce, optimizer] = (['reduce', 'optimizer'] as const).map((phase) => p.labels.filter((l) => tl.arrows[l.arrow].phase === phase));
      for (const ls of [reduce, optimizer]) {
        // The ranks send and receive the same [P] tensor: one label each, in full, before the arrows.
        expect(ls).toHaveLength(1);
        expect(ls[0].arrows).toHaveLength(n);
        expect(ls[0].text).toBe(ls[0].full);
        expect(ls[0].anchor).toBe('end');
      }
      expect(reduce[0].text).toBe(`${n > 1 ? `${n} × ` : ''}reduce [P=11176512] f32 · 42.64 MiB`);
      // Stacked: the same right edge, on two rows.
      expect(reduce[0].box.x1).toBe(optimizer[0].box.x1);
      expect(reduce[0].box.y1).toBeLessThanOrEqual(optimizer[0].box.y0);
    }
  });

  it('labels a roomy step in full, one label per phase when the ranks carry the same tensor', () => {
    const tl = buildTimeline(report(2, CASES[0][1], CASES[0][2], { d: 32 }), CASES[0][3]);
    const p = check(tl, placeArrowLabels(tl));
    expect(p.labels.map((l) => l.text)).toEqual(['2 × gather [8, 32] f32 · 1.0 KiB', '2 × scatter [8, 32] f32 · 1.0 KiB', '2 × reduce [P=2580] f32 · 10.1 KiB', '2 × optimizer [P=2580] f32 · 10.1 KiB']);
    // One rank: no count.
    const one = buildTimeline(report(1, CASES[0][1], CASES[0][2], { d: 32 }), CASES[0][3]);
    expect(check(one, placeArrowLabels(one)).labels.map((l) => l.text)[0]).toBe('gather [16, 32] f32 · 2.0 KiB');
  });

  it('gives each rank its own label when the ranks carry different tensors (K = 16 over 3 ranks)', () => {
    const tl = buildTimeline(report(3, CASES[0][1], CASES[0][2], { d: 32 }), CASES[0][3]);
    const p = check(tl, placeArrowLabels(tl));
    const gathers = p.labels.filter((l) => tl.arrows[l.arrow].phase === 'gather');
    expect(gathers.map((l) => l.text)).toEqual(['gather [6, 32] f32 · 768 B', 'gather [5, 32] f32 · 640 B', 'gather [5, 32] f32 · 640 B']);
    // Each by its own rank: three different gutters.
    expect(new Set(gathers.map((l) => l.y)).size).toBe(3);
    expect(p.labels.filter((l) => tl.arrows[l.arrow].phase === 'reduce')).toHaveLength(1);
  });

  it('shortens labels, then leaves them to the tooltips, when the drawing is cramped', () => {
    const narrow = { ...TIMELINE_GEOMETRY, width: 260 };
    for (let n = 1; n <= 8; n++) {
      const tl = buildTimeline(report(n, CASES[5][1], CASES[5][2], { k: 15 }), CASES[5][3]);
      const p = check(tl, placeArrowLabels(tl, narrow), estimateTextWidth, narrow);
      expect(p.labels.some((l) => l.text !== l.full)).toBe(true);
      if (n >= 2) expect(p.tooltipOnly.length).toBeGreaterThan(0);
    }
  });

  it('holds for random durations, rank counts 1..8 and a wider font', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const logU = (lo: number, hi: number) => lo * (hi / lo) ** rnd();
    const wide: Measure = (t, fs) => t.length * fs * 0.72;
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + (trial % 8);
      const main: Ms = { gather: logU(0.01, 50), aggregator: logU(0.01, 100), scatter: logU(0.01, 50), reduce: logU(0.01, 500), optimizer: logU(0.01, 300) };
      const rank: Ms = { decode: logU(0.01, 200), forward: logU(0.01, 1000), recompute: logU(0.01, 3000), optimizer: logU(0.01, 300) };
      const tl = buildTimeline(report(n, main, rank, { k: 1 + Math.floor(rnd() * 512), jitter: () => 0.5 + rnd() }), Math.floor(logU(100, 3e8)));
      check(tl, placeArrowLabels(tl));
      check(tl, placeArrowLabels(tl, TIMELINE_GEOMETRY, wide), wide);
    }
  });
});

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
  aggregator: 'The main context runs the gated-attention aggregator on all K features, computes the slide loss, backpropagates to get dL/dFeatures [K, D], and updates the aggregator.',
  scatter: 'Each rank gets back only the rows of dL/dFeatures that belong to its tiles.',
  recompute: 'Each rank recomputes its forward pass in fixed micro-batches inside a gradient call with the pseudo-loss sum(features × dL/dFeatures); its gradient is the rank\u2019s share of dL/d(encoder).',
  reduce: 'The ranks\u2019 encoder gradients are summed (not averaged): the sum is exactly the gradient of the single-graph model.',
  optimizer: 'Every replica applies the same AdamW update to the same summed gradient, so the replicas stay identical; a checksum verifies it.',
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

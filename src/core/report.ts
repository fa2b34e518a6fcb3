// The typed report every training step emits. The UI's timeline, the charts and the benchmarks
// all read these; nothing else is measured twice.

export const PHASES = ['decode', 'forward', 'gather', 'aggregator', 'scatter', 'recompute', 'reduce', 'optimizer'] as const;
export type Phase = (typeof PHASES)[number];

export interface RankStepReport {
  rank: number;
  /** Tiles (slots) this rank encoded. */
  tiles: number;
  /** Milliseconds per phase measured inside the rank (decode, forward, recompute, optimizer). */
  ms: Partial<Record<Phase, number>>;
  /** Live tfjs tensors in the rank after the step. */
  numTensors: number;
  /** Tiles were decoded ahead, during the previous step (decode ms is then only the wait). */
  prefetched: boolean;
}

export interface StepReport {
  kind: 'step';
  step: number;
  epoch: number;
  slideId: string;
  label: 0 | 1;
  loss: number;
  /** P(positive) of the slide under the current (pre-update) model. */
  prob: number;
  lr: number;
  weightDecay: number;
  /** K and N of this step; feature size D. */
  k: number;
  ranks: number;
  d: number;
  perRank: RankStepReport[];
  /** Milliseconds per phase on the main context's critical path (gather, aggregator, scatter, reduce, optimizer). */
  main: Partial<Record<Phase, number>>;
  /** Bytes that crossed a thread boundary per phase (features, feature gradients, encoder gradients, updates). */
  bytes: Partial<Record<Phase, number>>;
  /** Live tfjs tensors in the main context after the step. */
  mainTensors: number;
  /** Attention: raw scores s per slot with the slide tile index of that slot. */
  attention: { tileIndices: number[]; scores: number[] };
  /** Largest relative checksum difference between replicas (0 when identical). */
  replicaDrift: number;
  wallMs: number;
  frozenEncoder: boolean;
  /** How encoder gradients were summed: through the main context, or in shared memory by the ranks. */
  reduction: 'star' | 'shared';
}

export interface EvalSlide {
  slideId: string;
  label: 0 | 1;
  prob: number;
  attention: { tileIndices: number[]; scores: number[] };
}

export interface EvalReport {
  kind: 'eval';
  /** Epochs done when it ran: whole at an epoch's end, fractional for a validation every N steps (`evalEvery`), e.g. 1/3 after step 12 of a 36-step epoch. */
  epoch: number;
  step: number;
  slides: EvalSlide[];
  auc: number;
  wallMs: number;
  /** Validation slides whose tiles could not be read in this pass (file gone, tile not decodable): left out of it and of later passes. */
  setAside?: { slideId: string; reason: string }[];
}

/** An event for the teaching timeline: a phase started or ended, with what crossed. */
export interface PhaseEvent {
  step: number;
  phase: Phase;
  at: 'start' | 'end';
  /** e.g. "[K=16, D=32] float32" for what crossed an arrow in this phase. */
  shape?: string;
  bytes?: number;
}

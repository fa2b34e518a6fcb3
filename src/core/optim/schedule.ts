// Learning-rate and weight-decay schedules (docs/DESIGN.md section 1.7): linear warm-up, then cosine
// decay of the learning rate to minLr; weight decay follows a cosine from its start to its end.
import type { OptimizerConfig } from '../config.ts';

export interface Hyper {
  lr: number;
  weightDecay: number;
}

const cosine = (from: number, to: number, t: number) => to + 0.5 * (from - to) * (1 + Math.cos(Math.PI * Math.min(1, Math.max(0, t))));

/** Hyper-parameters at global step `step` of `totalSteps` (warmupSteps of linear warm-up). */
export function scheduleAt(opt: OptimizerConfig, step: number, totalSteps: number, warmupSteps: number): Hyper {
  const lr =
    step < warmupSteps
      ? (opt.lr * (step + 1)) / warmupSteps
      : cosine(opt.lr, opt.minLr, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps - 1));
  const weightDecay = cosine(opt.weightDecayEnd, opt.weightDecay, 1 - step / Math.max(1, totalSteps - 1));
  return { lr, weightDecay };
}

// Gradient accumulation over slides (optimizer.accumulateSlides = A): each training step is still
// one slide (forward, loss, backward), but the optimizers apply once per group of A consecutive
// steps, with the mean of the group's gradients. The weights stay fixed inside a group, so each
// step's gradient is the one a single-slide step would compute there. The engine and the
// single-graph reference both use these helpers, so they group and average the same way.

/** Whether the optimizers apply after training step `step` (0-based): at each group's end and at the run's last step. */
export function appliesAfter(step: number, accumulate: number, totalSteps: number): boolean {
  return accumulate <= 1 || (step + 1) % accumulate === 0 || step + 1 >= totalSteps;
}

/** Gradients summed by name (float32, in the order added); take() returns their mean and empties the sum. */
export class GradientSum {
  private sums = new Map<string, Float32Array>();
  private n = 0;

  /** Slides added since the last take(). */
  get count(): number {
    return this.n;
  }

  add(grads: ReadonlyMap<string, ArrayLike<number>>): void {
    for (const [name, g] of grads) {
      let sum = this.sums.get(name);
      if (!sum) this.sums.set(name, (sum = new Float32Array(g.length)));
      else if (sum.length !== g.length) throw new Error(`gradient of ${name}: ${g.length} values, the sum holds ${sum.length}`);
      for (let i = 0; i < g.length; i++) sum[i] += g[i];
    }
    this.n += 1;
  }

  /** The mean over the slides added (sum / count); empties the sum. Throws when nothing was added. */
  take(): Map<string, Float32Array> {
    if (!this.n) throw new Error('no gradient to take: nothing was accumulated');
    const out = this.sums;
    const inv = 1 / this.n;
    if (this.n > 1) for (const g of out.values()) for (let i = 0; i < g.length; i++) g[i] *= inv;
    this.sums = new Map();
    this.n = 0;
    return out;
  }

  clear(): void {
    this.sums = new Map();
    this.n = 0;
  }

  /** A copy of the open sum, for restore() (a step abandoned after it added its gradients). */
  snapshot(): { sums: Map<string, Float32Array>; n: number } {
    return { sums: new Map([...this.sums].map(([name, g]) => [name, g.slice()])), n: this.n };
  }

  restore(s: { sums: Map<string, Float32Array>; n: number }): void {
    this.sums = new Map([...s.sums].map(([name, g]) => [name, g.slice()]));
    this.n = s.n;
  }
}

// AdamW (decoupled weight decay, as torch.optim.AdamW): p <- p - lr * wd * p (decay params only),
// then p <- p - lr * mhat / (sqrt(vhat) + eps). Every replica applies it to the same summed
// gradient, so replicas stay identical.
import { tf, type Tensor } from '../tf.ts';
import type { OptimizerConfig } from '../config.ts';
import { variableFrom, type ParamSpec, type Params } from '../params.ts';
import type { Hyper } from './schedule.ts';

export class AdamW {
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();
  private t = 0;

  constructor(
    private readonly specs: readonly ParamSpec[],
    private readonly params: Params,
    private readonly opt: OptimizerConfig,
  ) {
    for (const s of specs) {
      this.m.set(s.name, variableFrom(tf.zeros(s.shape), false, `${s.name}.m`)); // first moment
      this.v.set(s.name, variableFrom(tf.zeros(s.shape), false, `${s.name}.v`)); // second moment
    }
  }

  get steps(): number {
    return this.t;
  }

  /** grads: dL/dp per parameter name (not disposed here). */
  apply(grads: Map<string, Tensor>, hyper: Hyper): void {
    this.t += 1;
    const { beta1, beta2, eps } = this.opt;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      for (const s of this.specs) {
        const g = grads.get(s.name);
        if (!g) throw new Error(`no gradient for ${s.name}`);
        const p = this.params.get(s.name)!;
        const m = this.m.get(s.name)!;
        const v = this.v.get(s.name)!;
        m.assign(m.mul(beta1).add(g.mul(1 - beta1)));
        v.assign(v.mul(beta2).add(g.square().mul(1 - beta2)));
        const decayed = s.decay && hyper.weightDecay > 0 ? p.mul(1 - hyper.lr * hyper.weightDecay) : p;
        const update = m.div(bc1).div(v.div(bc2).sqrt().add(eps)).mul(hyper.lr);
        p.assign(decayed.sub(update));
      }
    });
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

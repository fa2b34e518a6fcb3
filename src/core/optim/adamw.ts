// AdamW (decoupled weight decay, as torch.optim.AdamW): p <- p - lr * wd * p (decay params only),
// then p <- p - lr * mhat / (sqrt(vhat) + eps). Every replica applies it to the same summed
// gradient, so replicas stay identical.
//
// Two paths with the same arithmetic: tensor ops on the device (WebGPU), and one fused loop over
// the values on the cpu backend, where a chain of ten tfjs ops per parameter costs ~100x more.
import { tf, type Tensor } from '../tf.ts';
import type { OptimizerConfig } from '../config.ts';
import { packTensors, unpack, variableFrom, type ParamSpec, type Params } from '../params.ts';
import type { Hyper } from './schedule.ts';

/** AdamW's state, for checkpoints: the step count and both moments packed in spec order [P]. */
export interface AdamWState {
  t: number;
  m: Float32Array;
  v: Float32Array;
}

export class AdamW {
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();
  private t = 0;

  constructor(
    private readonly specs: readonly ParamSpec[],
    private readonly params: Params,
    private readonly opt: OptimizerConfig,
    /** 'auto': the fused loop on the cpu backend, tensor ops elsewhere. */
    private readonly path: 'auto' | 'tensor' | 'fused' = 'auto',
    /** Learning-rate multiplier per parameter (layer-wise decay); 0 freezes it. Absent: 1. */
    private readonly lrScales?: Map<string, number>,
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
    const fused = this.path === 'fused' || (this.path === 'auto' && tf.getBackend() === 'cpu');
    for (const s of this.specs) {
      const scale = this.lrScales?.get(s.name) ?? 1;
      if (scale === 0) continue; // frozen: parameter and moments untouched
      const g = grads.get(s.name);
      if (!g) throw new Error(`no gradient for ${s.name}`);
      const decay = s.decay ? hyper.weightDecay : 0;
      if (fused) this.fusedUpdate(s.name, g, hyper.lr * scale, decay);
      else this.tensorUpdate(s.name, g, hyper.lr * scale, decay);
    }
  }

  private tensorUpdate(name: string, g: Tensor, lr: number, decay: number): void {
    const { beta1, beta2, eps } = this.opt;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    const p = this.params.get(name)!;
    const m = this.m.get(name)!;
    const v = this.v.get(name)!;
    tf.tidy(() => {
      m.assign(m.mul(beta1).add(g.mul(1 - beta1)));
      v.assign(v.mul(beta2).add(g.square().mul(1 - beta2)));
      const decayed = decay > 0 ? p.mul(1 - lr * decay) : p;
      p.assign(decayed.sub(m.div(bc1).div(v.div(bc2).sqrt().add(eps)).mul(lr)));
    });
  }

  private fusedUpdate(name: string, g: Tensor, lr: number, decay: number): void {
    const { beta1, beta2, eps } = this.opt;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    const pv = this.params.get(name)!;
    const mv = this.m.get(name)!;
    const vv = this.v.get(name)!;
    const p = Float32Array.from(pv.dataSync());
    const m = Float32Array.from(mv.dataSync());
    const v = Float32Array.from(vv.dataSync());
    const gd = g.dataSync();
    const keep = 1 - lr * decay;
    for (let i = 0; i < p.length; i++) {
      const gi = gd[i];
      m[i] = beta1 * m[i] + (1 - beta1) * gi;
      v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
      p[i] = p[i] * keep - (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
    }
    for (const [variable, values] of [[pv, p], [mv, m], [vv, v]] as const) {
      const t = tf.tensor(values, variable.shape);
      variable.assign(t);
      t.dispose();
    }
  }

  async getState(): Promise<AdamWState> {
    return { t: this.t, m: await packTensors(this.specs, this.m), v: await packTensors(this.specs, this.v) };
  }

  setState(state: AdamWState): void {
    for (const [moments, packed] of [[this.m, state.m], [this.v, state.v]] as const) {
      for (const [name, values] of unpack(this.specs, packed)) {
        const variable = moments.get(name)!;
        const t = tf.tensor(values, variable.shape);
        variable.assign(t);
        t.dispose();
      }
    }
    this.t = state.t;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

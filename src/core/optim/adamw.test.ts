import { describe, expect, it } from 'vitest';
import { tf } from '../tf.ts';
import { parseConfig } from '../config.ts';
import { createParams, disposeParams, unpack, variableFrom, type ParamSpec, type Params } from '../params.ts';
import { normalizedL1 } from '../metrics.ts';
import { AdamW } from './adamw.ts';
import { scheduleAt } from './schedule.ts';

const specs: ParamSpec[] = [
  { name: 'w', shape: [7, 5], init: 'xavier', decay: true },
  { name: 'b', shape: [5], init: 'zeros', decay: false },
];

describe('AdamW', () => {
  it('fused and tensor paths agree, and biases are not decayed', async () => {
    await tf.setBackend('cpu');
    const opt = parseConfig({ optimizer: { lr: 0.05, weightDecay: 0.5, weightDecayEnd: 0.5 } }).optimizer;
    const a = createParams(specs, 1);
    const b = createParams(specs, 1);
    const fa = new AdamW(specs, a, opt, 'fused');
    const fb = new AdamW(specs, b, opt, 'tensor');
    for (let step = 0; step < 4; step++) {
      const grads = new Map(specs.map((s, i) => [s.name, tf.randomNormal(s.shape, 0, 1, 'float32', step * 10 + i)]));
      fa.apply(grads, { lr: 0.05, weightDecay: 0.5 });
      fb.apply(grads, { lr: 0.05, weightDecay: 0.5 });
      tf.dispose([...grads.values()]);
    }
    for (const s of specs) expect(normalizedL1(a.get(s.name)!.dataSync(), b.get(s.name)!.dataSync())).toBeLessThan(1e-6);
    // With zero gradients, only decay moves parameters: weights shrink, biases stay.
    const zero = new Map(specs.map((s) => [s.name, tf.zeros(s.shape)]));
    const fresh = createParams(specs, 2);
    const f = new AdamW(specs, fresh, opt, 'fused');
    const before = Float32Array.from(fresh.get('w')!.dataSync());
    f.apply(zero, { lr: 0.1, weightDecay: 0.5 });
    const after = fresh.get('w')!.dataSync();
    after.forEach((x, i) => expect(x).toBeCloseTo(before[i] * 0.95, 6));
    expect(Array.from(fresh.get('b')!.dataSync())).toEqual(Array.from(new Float32Array(5)));
    tf.dispose([...zero.values()]);
    [a, b, fresh].forEach(disposeParams);
    [fa, fb, f].forEach((o) => o.dispose());
  });

  // Expected values from torch.optim.AdamW (torch 1.13, float64; betas (0.9, 0.999), eps 1e-8, the
  // group's lr = lr * multiplier and weight_decay = 0 for parameters without decay), not from our
  // formula. Step 1 can be checked by hand: bias correction makes mhat = g and vhat = g^2, so
  //   p1 = p0 * (1 - lr * wd) - lr * g / (|g| + eps),
  // e.g. w[0] = 0.5 * (1 - 0.1 * 0.5) - 0.1 * 0.2 / 0.20000001 = 0.375000005; w[2] (g = 0) only
  // decays, 2 * 0.95 = 1.9; w[3] (g = 1e-7, where eps shows) = 0.0285 - 0.1 / 1.1; b[2] (no decay,
  // g = 1e-9) = -0.1 / 11. Step 2 uses bc1 = 1 - 0.9^2 = 0.19 and bc2 = 1 - 0.999^2 = 0.001999.
  describe('one and two steps against torch.optim.AdamW', () => {
    const handSpecs: ParamSpec[] = [
      { name: 'w', shape: [2, 2], init: 'zeros', decay: true },
      { name: 'b', shape: [3], init: 'zeros', decay: false }, // weight decay off
      { name: 'half', shape: [2], init: 'zeros', decay: true }, // lr multiplier 0.5 (layer-wise decay)
      { name: 'frozen', shape: [3], init: 'zeros', decay: true }, // lr multiplier 0: frozen
    ];
    const start: Record<string, number[]> = { w: [0.5, -1.25, 2.0, 0.03], b: [0.1, -0.2, 0.0], half: [1.0, -0.75], frozen: [0.3, -0.7, 1.1] };
    const grads: Record<string, number[]>[] = [
      { w: [0.2, -0.05, 0, 1e-7], b: [0.3, -2.0, 1e-9], half: [0.6, -0.01], frozen: [1, 1, 1] },
      { w: [-0.4, 0.1, 0.3, -0.02], b: [0.3, 0.5, -1e-3], half: [-0.2, 0.05], frozen: [-1, 2, 3] },
    ];
    const hypers = [{ lr: 0.1, weightDecay: 0.5 }, { lr: 0.05, weightDecay: 0.25 }];
    const expected: Record<string, number[]>[] = [
      { w: [0.375000005, -1.08750002, 1.9, -0.0624090909091], b: [3.33333322056e-9, -0.1000000005, -0.00909090909091], half: [0.925000000833, -0.68125005] },
      { w: [0.388617680711, -1.09221144379, 1.83904316058, -0.0244223298281], b: [-0.049999995, -0.0765265921007, 0.0281153725565], half: [0.909213286753, -0.691951087592] },
    ];
    // torch's exp_avg and exp_avg_sq after step 2.
    const moments: Record<string, { m: number[]; v: number[] }> = {
      w: { m: [-0.022, 0.0055, 0.03, -0.001999991], v: [0.00019996, 1.24975e-5, 9e-5, 4.0000000001e-7] },
      b: { m: [0.057, -0.13, -9.999991e-5], v: [0.00017991, 0.004246, 1e-9] },
      half: { m: [0.034, 0.0041], v: [0.00039964, 2.5999e-6] },
    };
    /** float32 arithmetic against float64 numbers: a few ulps of values of order 1. */
    const close = (got: ArrayLike<number>, want: number[], what: string) => {
      expect(got.length, what).toBe(want.length);
      want.forEach((w, i) => expect(Math.abs(got[i] - w), `${what}[${i}]: ${got[i]} vs ${w}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(w))));
    };

    it.each(['fused', 'tensor'] as const)('%s path', async (path) => {
      await tf.setBackend('cpu');
      const opt = parseConfig({ optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8 } }).optimizer;
      const params: Params = new Map(handSpecs.map((s) => [s.name, variableFrom(tf.tensor(start[s.name], s.shape), true, `hand.${path}.${s.name}`)]));
      const frozenBefore = Float32Array.from(params.get('frozen')!.dataSync());
      const adam = new AdamW(handSpecs, params, opt, path, new Map([['half', 0.5], ['frozen', 0]]));
      for (let step = 0; step < 2; step++) {
        const g = new Map(handSpecs.map((s) => [s.name, tf.tensor(grads[step][s.name], s.shape)]));
        adam.apply(g, hypers[step]);
        tf.dispose([...g.values()]);
        for (const name of ['w', 'b', 'half']) close(params.get(name)!.dataSync(), expected[step][name], `step ${step + 1} ${name}`);
        // Frozen: bit-identical, whatever its gradient and weight decay.
        expect(Array.from(params.get('frozen')!.dataSync()), `step ${step + 1} frozen`).toEqual(Array.from(frozenBefore));
      }
      const state = await adam.getState();
      expect(state.t).toBe(2);
      const m = unpack(handSpecs, state.m);
      const v = unpack(handSpecs, state.v);
      for (const name of ['w', 'b', 'half']) {
        close(m.get(name)!, moments[name].m, `m ${name}`);
        moments[name].v.forEach((want, i) => expect(Math.abs(v.get(name)![i] - want) / want, `v ${name}[${i}]`).toBeLessThan(1e-6));
      }
      expect(Array.from(m.get('frozen')!)).toEqual([0, 0, 0]); // the frozen parameter's moments are untouched too
      expect(Array.from(v.get('frozen')!)).toEqual([0, 0, 0]);
      disposeParams(params);
      adam.dispose();
    });
  });

  it('warms up linearly, then decays the learning rate by a cosine; weight decay rises by a cosine', () => {
    const opt = parseConfig({ optimizer: { lr: 1e-3, minLr: 1e-5, weightDecay: 0.04, weightDecayEnd: 0.4 } }).optimizer;
    const at = (s: number) => scheduleAt(opt, s, 100, 10);
    expect(at(0).lr).toBeCloseTo(1e-4);
    expect(at(9).lr).toBeCloseTo(1e-3);
    expect(at(10).lr).toBeCloseTo(1e-3);
    expect(at(99).lr).toBeCloseTo(1e-5);
    expect(at(50).lr).toBeLessThan(at(30).lr);
    expect(at(0).weightDecay).toBeCloseTo(0.04);
    expect(at(99).weightDecay).toBeCloseTo(0.4);
    expect(at(50).weightDecay).toBeGreaterThan(at(20).weightDecay);
  });
});

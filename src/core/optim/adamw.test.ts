import { describe, expect, it } from 'vitest';
import { tf } from '../tf.ts';
import { parseConfig } from '../config.ts';
import { createParams, disposeParams, type ParamSpec } from '../params.ts';
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

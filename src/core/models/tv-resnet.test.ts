import { beforeAll, describe, expect, it } from 'vitest';
import { relativeL2 } from '../metrics.ts';
import { readFileSync } from 'node:fs';
import { tf } from '../tf.ts';
import { EncoderSchema, featureDim, type EncoderConfig } from '../config.ts';
import { countParams, disposeParams, variableFrom, type Params } from '../params.ts';
import { BN_EPS, tvResnetForward, tvResnetForwardTfSame, tvResnetSpecs, tvResnetTrackedLayers } from './tv-resnet.ts';
import { detectTvResnet, exportTvResnet, importTvResnet, UnsupportedResnetError } from './tv-resnet-import.ts';
import { WeightMismatchError, hwioToOihw, type SourceTensors } from './import-types.ts';
import { readSafetensorsBlob } from './testing/read-safetensors-resnet.ts';
import { registerCpuTrainingKernels, unregisterCpuTrainingKernels } from '../../kernels/cpu-kernels.ts';

const FIXTURES = new URL('../../../fixtures/pretrained/', import.meta.url);
const readFixture = (file: string) => readSafetensorsBlob(new Blob([readFileSync(new URL(file, FIXTURES))]));

const enc = (over: Partial<EncoderConfig>): EncoderConfig => EncoderSchema.parse({ kind: 'tv-resnet', ...over });

/** ||a - b|| / ||b||. */
/** In-memory SourceTensors (what a weight reader hands over). */
function sourceOf(list: { name: string; shape: number[]; data: Float32Array }[]): SourceTensors {
  return new Map(list.map((t) => [t.name, { shape: t.shape, dtype: 'F32', read: async () => Float32Array.from(t.data) }]));
}

/** Shapes only: enough for detection, which never reads values. */
function shapesOnly(entries: [string, number[]][]): SourceTensors {
  return new Map(entries.map(([name, shape]) => [name, { shape, dtype: 'F32', read: async () => new Float32Array(shape.reduce((a, b) => a * b, 1)) }]));
}

function paramsFrom(cfg: EncoderConfig, values: Map<string, Float32Array>): Params {
  const p: Params = new Map();
  for (const s of tvResnetSpecs(cfg)) p.set(s.name, variableFrom(tf.tensor(values.get(s.name)!, s.shape), true, s.name));
  return p;
}

/** Deterministic pseudo-random values for every spec (BN scale around 1). */
function randomValues(cfg: EncoderConfig, seed = 1): Map<string, Float32Array> {
  let state = seed >>> 0;
  const rand = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const out = new Map<string, Float32Array>();
  for (const s of tvResnetSpecs(cfg)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fan = s.shape.length === 4 ? s.shape[0] * s.shape[1] * s.shape[2] : 1;
    const base = s.name.endsWith('.scale') ? 1 : 0;
    const amp = s.name.endsWith('.weight') ? Math.sqrt(3 / fan) : 0.1;
    out.set(s.name, Float32Array.from({ length: n }, () => base + amp * rand()));
  }
  return out;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('tvResnetSpecs: torchvision\'s parameters', () => {
  it('counts match torchvision\'s ResNet-18/34/50 without fc (conv weights + BN weight/bias)', () => {
    expect(countParams(tvResnetSpecs(enc({ width: 64, depth: 18 })))).toBe(11_689_512 - 513_000);
    expect(countParams(tvResnetSpecs(enc({ width: 64, depth: 34 })))).toBe(21_797_672 - 513_000);
    expect(countParams(tvResnetSpecs(enc({ width: 64, depth: 50 })))).toBe(25_557_032 - 2_049_000);
  });

  it('names, layers, decay and tracked layers', () => {
    const cfg = enc({ width: 8, depth: 50, truncate: true });
    const specs = tvResnetSpecs(cfg);
    const names = specs.map((s) => s.name);
    expect(names.slice(0, 3)).toEqual(['enc.conv1.weight', 'enc.bn1.scale', 'enc.bn1.shift']);
    expect(specs[0].shape).toEqual([7, 7, 3, 8]);
    expect(names).toContain('enc.layer1.0.downsample.0.weight'); // channel change 8 -> 32
    expect(names).toContain('enc.layer2.0.downsample.1.scale');
    expect(names).not.toContain('enc.layer1.1.downsample.0.weight');
    expect(names.some((n) => n.startsWith('enc.layer4.'))).toBe(false);
    expect(specs.find((s) => s.name === 'enc.layer2.0.conv2.weight')!.shape).toEqual([3, 3, 16, 16]);
    expect(specs.find((s) => s.name === 'enc.layer3.5.conv3.weight')!.shape).toEqual([1, 1, 32, 128]);
    for (const s of specs) {
      expect(s.decay).toBe(s.name.endsWith('.weight'));
      expect(s.init).toBe(s.name.endsWith('.weight') ? 'he' : s.name.endsWith('.scale') ? 'ones' : 'zeros');
    }
    expect(specs.filter((s) => s.layer === 0).map((s) => s.name)).toEqual(['enc.conv1.weight', 'enc.bn1.scale', 'enc.bn1.shift']);
    expect(specs.find((s) => s.name === 'enc.layer1.0.downsample.1.shift')!.layer).toBe(1);
    expect(specs.find((s) => s.name === 'enc.layer2.0.conv1.weight')!.layer).toBe(4); // 3 blocks in layer1
    expect(Math.max(...specs.map((s) => s.layer!))).toBe(13); // 3 + 4 + 6 blocks
    expect(tvResnetTrackedLayers(cfg)).toEqual(['enc.conv1.weight', 'enc.layer3.5.conv3.weight']);
    expect(tvResnetTrackedLayers(enc({ width: 8, depth: 18 }))).toEqual(['enc.conv1.weight', 'enc.layer4.1.conv2.weight']);
    // ResNet-18: downsample only where the stride changes.
    const r18 = tvResnetSpecs(enc({ width: 8, depth: 18 })).map((s) => s.name).filter((n) => n.endsWith('downsample.0.weight'));
    expect(r18).toEqual(['enc.layer2.0.downsample.0.weight', 'enc.layer3.0.downsample.0.weight', 'enc.layer4.0.downsample.0.weight']);
  });

  it.each([
    { depth: 18, truncate: false, size: 32 },
    { depth: 34, truncate: true, size: 40 },
    { depth: 50, truncate: false, size: 33 },
    { depth: 50, truncate: true, size: 64 },
  ] as const)('forward gives [B, featureDim]: depth $depth truncate $truncate at $size px', ({ depth, truncate, size }) => {
    const cfg = enc({ width: 4, depth, truncate });
    const p = paramsFrom(cfg, randomValues(cfg));
    const before = tf.memory().numTensors;
    const shape = tf.tidy(() => tvResnetForward(p, cfg, tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 3)).shape);
    expect(shape).toEqual([2, featureDim(cfg)]);
    expect(tf.memory().numTensors).toBe(before);
    disposeParams(p);
  });
});

describe('tfjs behaviour the forward relies on', () => {
  it('maxPool with a numeric pad skips the padded taps (-inf padding, as torchvision), so all-negative windows stay negative', async () => {
    const x = tf.tensor4d([-5, -4, -3, -2, -1, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16], [1, 4, 4, 1]);
    const y = tf.maxPool(x, 3, 2, 1);
    expect(y.shape).toEqual([1, 2, 2, 1]); // torchvision: floor((4 + 2 - 3) / 2) + 1 = 2
    expect([...(await y.data())]).toEqual([-1, -2, -1, -6]);
    tf.dispose([x, y]);
  });
});

describe('detectTvResnet', () => {
  const stateDict = (cfg: EncoderConfig) => exportTvResnet(randomValues(cfg), cfg);

  it('recognises torchvision names and infers depth, width and truncation', () => {
    for (const depth of [18, 34, 50] as const) {
      const full = sourceOf(stateDict(enc({ width: 16, depth })));
      expect(detectTvResnet(full)!.options).toEqual({ kind: 'tv-resnet', depth, width: 16, truncate: false });
      const trunc = sourceOf(stateDict(enc({ width: 16, depth, truncate: true })));
      const d = detectTvResnet(trunc)!;
      expect(d.options).toEqual({ kind: 'tv-resnet', depth, width: 16, truncate: true });
      expect(d.notes.join(' ')).toMatch(/truncated after layer3/);
    }
  });

  it('is null for other families, and refuses ResNet-101/152, wide ResNets and a stem-only file', () => {
    expect(detectTvResnet(shapesOnly([['patch_embed.proj.weight', [192, 3, 16, 16]], ['cls_token', [1, 1, 192]]]))).toBeNull();
    const layout = (counts: number[], inner = 64): SourceTensors => {
      const e: [string, number[]][] = [['conv1.weight', [64, 3, 7, 7]], ['bn1.running_mean', [64]], ['layer1.0.conv3.weight', [256, inner, 1, 1]], ['layer1.0.conv2.weight', [inner, inner, 3, 3]]];
      counts.forEach((n, s) => {
        for (let k = 0; k < n; k++) e.push([`layer${s + 1}.${k}.conv1.weight`, [inner, 64, 1, 1]]);
      });
      return shapesOnly(e);
    };
    expect(detectTvResnet(layout([3, 4, 6, 3]))!.options.depth).toBe(50);
    expect(() => detectTvResnet(layout([3, 4, 23, 3]))).toThrow(/ResNet-101.*the lab builds ResNet-18/);
    expect(() => detectTvResnet(layout([3, 8, 36, 3]))).toThrow(UnsupportedResnetError);
    expect(() => detectTvResnet(layout([3, 8, 36, 3]))).toThrow(/ResNet-152/);
    expect(() => detectTvResnet(layout([3, 4, 6, 3], 128))).toThrow(/wide ResNet or ResNeXt/);
    expect(() => detectTvResnet(layout([3, 4]))).toThrow(/layer1..layer3/);
  });
});

describe('importTvResnet / exportTvResnet', () => {
  it('export -> import reproduces the values (1e-6), with BN unfolded as mean 0, var 1 - eps', async () => {
    for (const cfg of [enc({ width: 8, depth: 18 }), enc({ width: 8, depth: 50, truncate: true })]) {
      const values = randomValues(cfg, 5);
      const exported = exportTvResnet(values, cfg);
      const bn = exported.find((t) => t.name === 'layer1.0.bn1.running_var')!;
      expect(bn.data[0]).toBe(Math.fround(1 - BN_EPS));
      expect(exported.find((t) => t.name === 'layer1.0.conv1.weight')!.shape).toEqual(cfg.depth === 50 ? [8, 8, 1, 1] : [8, 8, 3, 3]);
      const back = await importTvResnet(sourceOf(exported), cfg);
      expect([...back.values.keys()]).toEqual(tvResnetSpecs(cfg).map((s) => s.name));
      let worst = 0;
      for (const [name, v] of values) {
        const w = back.values.get(name)!;
        for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]) / Math.max(1, Math.abs(v[i])));
      }
      expect(worst).toBeLessThan(1e-6);
      expect(back.report).toMatchObject({ missing: [], unexpected: [], unused: [], misshaped: [] });
    }
  });

  it('a missing or mis-shaped key is a WeightMismatchError that names it', async () => {
    const cfg = enc({ width: 8, depth: 18 });
    const good = exportTvResnet(randomValues(cfg), cfg);
    const missing = good.filter((t) => t.name !== 'layer2.0.downsample.1.running_var');
    const err = await importTvResnet(sourceOf(missing), cfg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect((err as WeightMismatchError).report.missing).toEqual(['layer2.0.downsample.1.running_var']);
    expect((err as Error).message).toMatch(/layer2\.0\.downsample\.1\.running_var/);

    const bad = good.map((t) => (t.name === 'layer3.1.conv2.weight' ? { ...t, shape: [32, 32, 1, 9] } : t));
    const err2 = await importTvResnet(sourceOf(bad), cfg).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(WeightMismatchError);
    expect((err2 as WeightMismatchError).report.misshaped).toEqual([{ name: 'layer3.1.conv2.weight', expected: [32, 32, 3, 3], found: [32, 32, 1, 9] }]);
    expect((err2 as Error).message).toMatch(/layer3\.1\.conv2\.weight \[32,32,1,9\] \(expected \[32,32,3,3\]\)/);
  });

  it('a deeper file than the chosen depth fails (its extra blocks would be dropped silently); a stray key is only reported', async () => {
    const r34 = exportTvResnet(randomValues(enc({ width: 8, depth: 34 })), enc({ width: 8, depth: 34 }));
    const err = await importTvResnet(sourceOf(r34), enc({ width: 8, depth: 18 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect((err as WeightMismatchError).report.unexpected).toContain('layer1.2.conv1.weight');
    const cfg = enc({ width: 8, depth: 18 });
    const extra = [...exportTvResnet(randomValues(cfg), cfg), { name: 'something.else', shape: [1], data: new Float32Array(1) }];
    const ok = await importTvResnet(sourceOf(extra), cfg);
    expect(ok.report.unexpected).toEqual(['something.else']);
  });

  it('forward in tidy and variableGrads with disposal leave no tensors behind', () => {
    const cfg = enc({ width: 4, depth: 50, truncate: true });
    const p = paramsFrom(cfg, randomValues(cfg));
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 9);
    const before = tf.memory().numTensors;
    tf.tidy(() => tvResnetForward(p, cfg, x)).dispose(); // tidy keeps only the result
    expect(tf.memory().numTensors).toBe(before);
    const { value, grads } = tf.variableGrads(() => tvResnetForward(p, cfg, x).square().sum() as tf.Scalar);
    expect(Object.keys(grads).length).toBe(p.size);
    value.dispose();
    tf.dispose(Object.values(grads));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    disposeParams(p);
  });
});

interface FixtureJson {
  tileSize: number;
  featureDim: number;
  options: { arch: string; width: number; truncate: string | null; bnEps: number };
}

/** detect -> import -> forward and gradients of one fixture against PyTorch's; logs the worst figures. */
async function checkFixture(id: string, depth: 18 | 50, truncate: boolean, label: string): Promise<void> {
  const meta = JSON.parse(readFileSync(new URL(`${id}.json`, FIXTURES), 'utf8')) as FixtureJson;
  const weights = await readFixture(`${id}.safetensors`);
  const expect_ = await readFixture(`${id}.expect.safetensors`);
  const read = async (name: string) => expect_.get(name)!.read();

  // Detection: the file always holds layer4 (the trunc fixture too), so truncation is the caller's.
  const det = detectTvResnet(weights)!;
  expect(det.family).toBe('tv-resnet');
  expect(det.options).toEqual({ kind: 'tv-resnet', depth, width: meta.options.width, truncate: false });
  expect(meta.options.truncate === 'layer3').toBe(truncate);
  const cfg = enc({ ...det.options, truncate });
  expect(featureDim(cfg)).toBe(meta.featureDim);

  const { values, report } = await importTvResnet(weights, cfg);
  expect(report.missing).toEqual([]);
  expect(report.unexpected).toEqual([]);
  expect(report.misshaped).toEqual([]);
  const unusedExpected = [...weights.keys()].filter((n) => (n.startsWith('fc.') || (truncate && n.startsWith('layer4.'))) && !n.endsWith('num_batches_tracked'));
  expect([...report.unused].sort()).toEqual(unusedExpected.sort());
  if (truncate) expect(report.unused).toContain('layer4.2.conv3.weight');
  expect(report.unused).toContain('fc.weight');

  const p = paramsFrom(cfg, values);
  const inputShape = expect_.get('input')!.shape;
  const x = tf.tensor(await read('input'), inputShape);
  const r = tf.tensor(await read('r'), expect_.get('r')!.shape);
  const before = tf.memory().numTensors;

  // Features.
  const feats = tf.tidy(() => tvResnetForward(p, cfg, x));
  const featErr = relativeL2(await feats.data(), await read('features'));
  const sameFeats = tf.tidy(() => tvResnetForwardTfSame(p, cfg, x));
  const sameErr = relativeL2(await sameFeats.data(), await read('features'));
  tf.dispose([feats, sameFeats]);
  expect(tf.memory().numTensors).toBe(before);
  expect(featErr).toBeLessThan(1e-5);
  expect(sameErr).toBeGreaterThan(0.01); // tfjs 'same' padding is a different network: the test can fail

  // Gradients of sum(features * r): w.r.t. the input ...
  const loss = (input: tf.Tensor) => tvResnetForward(p, cfg, input).mul(r).sum() as tf.Scalar;
  const gx = tf.grad(loss)(x);
  const gradInputErr = relativeL2(await gx.data(), await read('grad.input'));
  gx.dispose();
  expect(tf.memory().numTensors).toBe(before);

  // ... and w.r.t. every parameter: conv weights directly (OIHW), BatchNorm through the folding
  // (d/dbias = d/dshift; d/dweight = (d/dscale - running_mean * d/dshift) / sqrt(running_var + eps)).
  const { value, grads } = tf.variableGrads(() => loss(x));
  const ours = new Map<string, Float32Array>();
  for (const [name, v] of p) ours.set(name, (await grads[v.name].data()) as Float32Array);
  value.dispose();
  tf.dispose(Object.values(grads));
  expect(tf.memory().numTensors).toBe(before);

  let worstConv = { name: '', err: 0 };
  let worstBn = { name: '', err: 0 };
  let convs = 0;
  let bns = 0;
  for (const s of tvResnetSpecs(cfg)) {
    const src = s.name.slice('enc.'.length);
    if (s.name.endsWith('.weight')) {
      const err = relativeL2(hwioToOihw(ours.get(s.name)!, s.shape), await read(`grad.${src}`));
      if (err > worstConv.err) worstConv = { name: src, err };
      convs++;
    } else if (s.name.endsWith('.scale')) {
      const bn = src.slice(0, -'.scale'.length);
      const dScale = ours.get(s.name)!;
      const dShift = ours.get(`enc.${bn}.shift`)!;
      const mean = await weights.get(`${bn}.running_mean`)!.read();
      const variance = await weights.get(`${bn}.running_var`)!.read();
      const dWeight = dScale.map((g, i) => (g - mean[i] * dShift[i]) / Math.sqrt(variance[i] + BN_EPS));
      for (const [mine, theirs] of [[dWeight, `grad.${bn}.weight`], [dShift, `grad.${bn}.bias`]] as const) {
        const err = relativeL2(mine, await read(theirs));
        if (err > worstBn.err) worstBn = { name: theirs.slice(5), err };
      }
      bns++;
    }
  }
  // Every gradient the fixture has is one we compared (fc / layer4 have none).
  const gradNames = [...expect_.keys()].filter((n) => n.startsWith('grad.') && n !== 'grad.input');
  expect(gradNames.length).toBe(convs + 2 * bns);

  console.log(
    `[tv-resnet] ${id} (${label}): features rel L2 ${featErr.toExponential(2)} (tfjs 'same' padding: ${sameErr.toExponential(2)}); ` +
      `grad.input ${gradInputErr.toExponential(2)}; worst conv weight grad ${worstConv.err.toExponential(2)} (${worstConv.name}, ${convs} convs); ` +
      `worst BN grad ${worstBn.err.toExponential(2)} (${worstBn.name}, ${bns} BNs)`,
  );
  expect(gradInputErr).toBeLessThan(1e-4);
  expect(worstConv.err).toBeLessThan(1e-4);
  expect(worstBn.err).toBeLessThan(1e-4);

  tf.dispose([x, r]);
  disposeParams(p);
}

describe.each([
  { id: 'tv-resnet18-w8', depth: 18, truncate: false },
  { id: 'tv-resnet50trunc-w8', depth: 50, truncate: true },
] as const)('golden fixture $id (PyTorch / torchvision)', ({ id, depth, truncate }) => {
  it('detect -> import -> forward and gradients agree with PyTorch (stock tfjs cpu kernels)', () => checkFixture(id, depth, truncate, 'stock cpu'));
});

describe('golden fixture with the lab\'s cpu training kernels (Conv2DBackpropFilter, BatchMatMul)', () => {
  it('tv-resnet50trunc-w8 agrees too: explicit padding reaches their padInfo', async () => {
    registerCpuTrainingKernels();
    try {
      await checkFixture('tv-resnet50trunc-w8', 50, true, 'lab cpu kernels');
    } finally {
      unregisterCpuTrainingKernels();
    }
  });
});

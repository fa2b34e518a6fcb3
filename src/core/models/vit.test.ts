import { beforeAll, describe, expect, it } from 'vitest';
import { relativeL2 } from '../metrics.ts';
import { existsSync, readFileSync } from 'node:fs';
import { tf } from '../tf.ts';
import { EncoderSchema, featureDim, type EncoderConfig } from '../config.ts';
import { createParams, disposeParams, variableFrom, type Params } from '../params.ts';
import { vitForward, vitSpecs, vitTrackedLayers } from './vit.ts';
import { detectVit, exportVit, importVit, type VitFamily } from './vit-import.ts';
import { resizePosEmbed } from './pos-embed.ts';
import { WeightMismatchError, type SourceTensors } from './import-types.ts';
import { readFixtureAll, readFixtureTensors } from './testing/read-fixture.ts';

const FIXTURES = new URL('../../../fixtures/pretrained/', import.meta.url);
const fixturePath = (file: string) => new URL(file, FIXTURES);
const blobOf = (file: string) => new Blob([readFileSync(fixturePath(file))]);
const VIT_FIXTURES = ['timm-vit-ti', 'timm-vit-x', 'hf-vit', 'tv-vit'] as const;
const haveFixtures = VIT_FIXTURES.every((id) => existsSync(fixturePath(`${id}.expect.safetensors`)));

interface FixtureMeta {
  id: string;
  family: VitFamily;
  tileSize: number;
  batch: number;
  featureDim: number;
  options: Partial<EncoderConfig>;
}
const meta = (id: string) => JSON.parse(readFileSync(fixturePath(`${id}.json`), 'utf8')) as FixtureMeta;
const vitConfig = (options: Partial<EncoderConfig>): EncoderConfig => EncoderSchema.parse({ ...options, kind: 'vit' });

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Bit-identical Float32Arrays (quicker than toEqual on large arrays). */
const sameBits = (a: Float32Array, b: Float32Array) =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** In-memory SourceTensors. */
function memTensors(entries: Iterable<[string, { shape: number[]; data: Float32Array }]>): SourceTensors {
  const out: SourceTensors = new Map();
  for (const [name, { shape, data }] of entries) out.set(name, { shape, dtype: 'F32', read: async () => Float32Array.from(data) });
  return out;
}

function paramsFrom(enc: EncoderConfig, tileSize: number, values: Map<string, Float32Array>): Params {
  const params: Params = new Map();
  for (const s of vitSpecs(enc, tileSize)) params.set(s.name, variableFrom(tf.tensor(values.get(s.name)!, s.shape), true, s.name));
  return params;
}

/** Features and the gradients of sum(features * r) w.r.t. the input and every parameter. */
async function forwardBackward(params: Params, enc: EncoderConfig, input: { shape: number[]; data: Float32Array }, r: Float32Array) {
  const x = tf.variable(tf.tensor(input.data, input.shape), true, `input#${Math.random()}`);
  const features = tf.tidy(() => vitForward(params, enc, x));
  const rT = tf.tensor(r, features.shape);
  const { value, grads } = tf.variableGrads(() => vitForward(params, enc, x).mul(rT).sum() as tf.Scalar, [x, ...params.values()]);
  const out = {
    features: (await features.data()) as Float32Array,
    gradInput: (await grads[x.name].data()) as Float32Array,
    gradParams: new Map<string, Float32Array>(),
  };
  for (const [name, v] of params) out.gradParams.set(name, (await grads[v.name].data()) as Float32Array);
  tf.dispose([x, features, rT, value, ...Object.values(grads)]);
  return out;
}

describe.skipIf(!haveFixtures)('ViT against PyTorch fixtures', () => {
  for (const id of VIT_FIXTURES) {
    it(`${id}: detect, import, features (1e-5) and every gradient (1e-4)`, async () => {
      const m = meta(id);
      const tensors = await readFixtureTensors(blobOf(`${id}.safetensors`));
      const det = detectVit(tensors)!;
      expect(det).not.toBeNull();
      expect(det.family).toBe(m.family);
      const { heads, ...shapeOptions } = m.options;
      expect(det.options).toMatchObject({ kind: 'vit', ...shapeOptions });
      // Heads cannot be read from shapes: dim / 64 is assumed (right for the 192-d ViT-Ti), and said so.
      expect(det.options.heads).toBe(m.options.dim! % 64 === 0 ? m.options.dim! / 64 : undefined);
      expect(det.notes.some((n) => n.includes('heads'))).toBe(true);

      const enc = vitConfig({ ...det.options, heads });
      expect(featureDim(enc)).toBe(m.featureDim);
      const { values, report } = await importVit(tensors, det.family, enc, m.tileSize);
      expect(report.missing).toEqual([]);
      expect(report.misshaped).toEqual([]);
      expect(report.unexpected).toEqual([]);

      const expect_ = await readFixtureAll(blobOf(`${id}.expect.safetensors`));
      const params = paramsFrom(enc, m.tileSize, values);
      const got = await forwardBackward(params, enc, expect_.get('input')!, expect_.get('r')!.data);
      disposeParams(params);

      const featErr = relativeL2(got.features, expect_.get('features')!.data);
      const inputErr = relativeL2(got.gradInput, expect_.get('grad.input')!.data);
      // Parameter gradients back in PyTorch names and layouts through the export map.
      const exported = exportVit(got.gradParams, det.family, enc, m.tileSize);
      const expectedGradNames = [...expect_.keys()].filter((k) => k.startsWith('grad.') && k !== 'grad.input').map((k) => k.slice(5));
      expect(exported.map((t) => t.name).sort()).toEqual(expectedGradNames.sort());
      // Gradients that are zero analytically (Hugging Face's separate key bias: softmax over keys
      // ignores q·b_k, the same for every key) hold only round-off on both sides; they are checked
      // in absolute terms against the norm of all parameter gradients instead of relatively.
      const norm = (a: Float32Array) => {
        let s = 0;
        for (const v of a) s += v * v;
        return Math.sqrt(s);
      };
      const total = Math.sqrt(exported.reduce((s, t) => s + norm(expect_.get(`grad.${t.name}`)!.data) ** 2, 0));
      let worst = { name: '', err: 0 };
      const zeros: string[] = [];
      let worstZero = 0;
      for (const t of exported) {
        const want = expect_.get(`grad.${t.name}`)!;
        expect(t.shape).toEqual(want.shape);
        if (norm(want.data) < 1e-6 * total) {
          zeros.push(t.name);
          worstZero = Math.max(worstZero, norm(t.data) / total);
          continue;
        }
        const err = relativeL2(t.data, want.data);
        if (err > worst.err) worst = { name: t.name, err };
      }
      console.log(
        `${id}: features rel L2 ${featErr.toExponential(2)}; grad input ${inputErr.toExponential(2)}; worst of ${exported.length - zeros.length} parameter grads ${worst.err.toExponential(2)} (${worst.name})` +
          (zeros.length ? `; ${zeros.length} analytically zero (${zeros.join(', ')}): |lab| / |all grads| <= ${worstZero.toExponential(2)}` : ''),
      );
      expect(worstZero).toBeLessThan(1e-6);
      expect(zeros.every((n) => n.endsWith('key.bias'))).toBe(true);
      expect(featErr).toBeLessThan(1e-5);
      expect(inputErr).toBeLessThan(1e-4);
      expect(worst.err).toBeLessThan(1e-4);
    });
  }

  for (const tile of [48, 24]) {
    it(`timm-vit-x at tile ${tile}: pos_embed resized like timm (1e-6), features match`, async () => {
      const m = meta('timm-vit-x');
      const tensors = await readFixtureTensors(blobOf('timm-vit-x.safetensors'));
      const det = detectVit(tensors)!;
      const enc = vitConfig({ ...det.options, heads: m.options.heads });
      const exp = await readFixtureAll(blobOf(`timm-vit-x.expect${tile}.safetensors`));
      const wantPos = exp.get('pos_embed_resized')!;

      const src = await tensors.get('pos_embed')!.read();
      const direct = resizePosEmbed(src, 4, tile / 8, enc.dim);
      let maxAbs = 0;
      direct.forEach((v, i) => (maxAbs = Math.max(maxAbs, Math.abs(v - wantPos.data[i]))));
      const posErr = relativeL2(direct, wantPos.data);

      const { values, report } = await importVit(tensors, det.family, enc, tile);
      expect(report.notes.some((n) => n.includes(`from 4x4 to ${tile / 8}x${tile / 8}`))).toBe(true);
      expect(values.get('enc.pos_embed')).toEqual(direct);
      expect(vitSpecs(enc, tile).find((s) => s.name === 'enc.pos_embed')!.shape).toEqual(wantPos.shape);

      const params = paramsFrom(enc, tile, values);
      const got = await forwardBackward(params, enc, exp.get('input')!, exp.get('r')!.data);
      disposeParams(params);
      const featErr = relativeL2(got.features, exp.get('features')!.data);
      const inputErr = relativeL2(got.gradInput, exp.get('grad.input')!.data);
      console.log(
        `timm-vit-x @${tile}: pos_embed rel L2 ${posErr.toExponential(2)} (max abs ${maxAbs.toExponential(2)}); features ${featErr.toExponential(2)}; grad input ${inputErr.toExponential(2)}`,
      );
      expect(posErr).toBeLessThan(1e-6);
      expect(featErr).toBeLessThan(1e-5);
      expect(inputErr).toBeLessThan(1e-4);
    });
  }

  it('unused heads and poolers are listed, not refused', async () => {
    const cases: [string, string[]][] = [
      ['timm-vit-ti', ['head.bias', 'head.weight']],
      ['hf-vit', ['pooler.dense.bias', 'pooler.dense.weight']],
      ['tv-vit', ['heads.head.bias', 'heads.head.weight']],
    ];
    for (const [id, unused] of cases) {
      const m = meta(id);
      const tensors = await readFixtureTensors(blobOf(`${id}.safetensors`));
      const { report } = await importVit(tensors, m.family, vitConfig(m.options), m.tileSize);
      expect(report.unused.sort()).toEqual(unused);
    }
  });

  it('a missing key and a mis-shaped key give WeightMismatchError naming them', async () => {
    const m = meta('timm-vit-ti');
    const enc = vitConfig(m.options);
    const all = await readFixtureAll(blobOf('timm-vit-ti.safetensors'));

    const missing = memTensors([...all].filter(([n]) => n !== 'blocks.1.norm2.weight'));
    const e1 = await importVit(missing, 'timm-vit', enc, 32).catch((e) => e);
    expect(e1).toBeInstanceOf(WeightMismatchError);
    expect((e1 as WeightMismatchError).report.missing).toEqual(['blocks.1.norm2.weight']);
    expect((e1 as Error).message).toContain('blocks.1.norm2.weight');

    const bad = new Map(all);
    bad.set('blocks.0.mlp.fc2.weight', { shape: [192, 700], data: new Float32Array(192 * 700) });
    const e2 = await importVit(memTensors(bad), 'timm-vit', enc, 32).catch((e) => e);
    expect(e2).toBeInstanceOf(WeightMismatchError);
    expect((e2 as WeightMismatchError).report.misshaped).toEqual([{ name: 'blocks.0.mlp.fc2.weight', expected: [192, 768], found: [192, 700] }]);
    expect((e2 as Error).message).toContain('blocks.0.mlp.fc2.weight');

    // A tensor no part of the map knows (here timm's qk-norm) means a different model: refused.
    const extra = new Map(all);
    extra.set('blocks.0.attn.q_norm.weight', { shape: [64], data: new Float32Array(64) });
    const e3 = await importVit(memTensors(extra), 'timm-vit', enc, 32).catch((e) => e);
    expect(e3).toBeInstanceOf(WeightMismatchError);
    expect((e3 as WeightMismatchError).report.unexpected).toEqual(['blocks.0.attn.q_norm.weight']);
  });

  it('export -> import and import -> export are exact for every family', async () => {
    for (const id of VIT_FIXTURES) {
      const m = meta(id);
      const enc = vitConfig(m.options);
      const file = await readFixtureAll(blobOf(`${id}.safetensors`));
      const { values } = await importVit(memTensors(file), m.family, enc, m.tileSize);
      const exported = exportVit(values, m.family, enc, m.tileSize);
      // import -> export gives the file back bit for bit (heads aside).
      for (const t of exported) {
        expect(t.shape).toEqual(file.get(t.name)!.shape);
        expect(sameBits(t.data, file.get(t.name)!.data)).toBe(true);
      }
      const back = await importVit(memTensors(exported.map((t) => [t.name, t] as [string, typeof t])), m.family, enc, m.tileSize);
      expect([...back.values.keys()]).toEqual([...values.keys()]);
      for (const [name, v] of values) expect(sameBits(back.values.get(name)!, v), name).toBe(true);
      expect(back.report.unused).toEqual([]);
    }
  });

  it("Hugging Face's 'vit.' prefix (ViTForImageClassification) and torchvision's old mlp.linear_1/2 names", async () => {
    const hf = await readFixtureAll(blobOf('hf-vit.safetensors'));
    const prefixed = memTensors([
      ...[...hf].map(([n, t]) => [`vit.${n}`, t] as [string, typeof t]),
      ['classifier.weight', { shape: [3, 64], data: new Float32Array(192) }],
    ]);
    const det = detectVit(prefixed)!;
    expect(det.family).toBe('hf-vit');
    const enc = vitConfig({ ...det.options, heads: 4 });
    const a = await importVit(prefixed, 'hf-vit', enc, 32);
    const b = await importVit(memTensors(hf), 'hf-vit', enc, 32);
    expect(a.report.unused.sort()).toEqual(['classifier.weight', 'vit.pooler.dense.bias', 'vit.pooler.dense.weight']);
    for (const [name, v] of b.values) expect(sameBits(a.values.get(name)!, v), name).toBe(true);

    const tv = await readFixtureAll(blobOf('tv-vit.safetensors'));
    const old = memTensors([...tv].map(([n, t]) => [n.replace('.mlp.0.', '.mlp.linear_1.').replace('.mlp.3.', '.mlp.linear_2.'), t] as [string, typeof t]));
    const tvDet = detectVit(old)!;
    expect(tvDet.options).toMatchObject({ mlpHidden: 256, mlp: 'gelu' });
    const tvEnc = vitConfig({ ...tvDet.options, heads: 4 });
    const c = await importVit(old, 'tv-vit', tvEnc, 32);
    const d = await importVit(memTensors(tv), 'tv-vit', tvEnc, 32);
    for (const [name, v] of d.values) expect(sameBits(c.values.get(name)!, v), name).toBe(true);
  });
});

describe('ViT (synthetic)', () => {
  const X = vitConfig({
    patch: 4, dim: 16, blocks: 2, heads: 2, mlpHidden: 24, mlp: 'swiglu', layerScale: true,
    classToken: true, regTokens: 2, noEmbedClass: true, pool: 'cls+mean', fcNorm: false,
  });

  it('specs: timm names, tfjs layouts, inits, decay and layer ids', () => {
    const specs = vitSpecs(X, 16);
    const by = new Map(specs.map((s) => [s.name, s]));
    expect(by.get('enc.patch_embed.proj.weight')).toMatchObject({ shape: [4, 4, 3, 16], init: 'normal02', decay: true, layer: 0 });
    expect(by.get('enc.patch_embed.proj.bias')).toMatchObject({ shape: [16], init: 'zeros', decay: false, layer: 0 });
    expect(by.get('enc.cls_token')).toMatchObject({ shape: [1, 1, 16], init: 'normal02', decay: false, layer: 0 });
    expect(by.get('enc.reg_token')).toMatchObject({ shape: [1, 2, 16], decay: false, layer: 0 });
    expect(by.get('enc.pos_embed')).toMatchObject({ shape: [1, 16, 16], decay: false, layer: 0 }); // noEmbedClass: g² rows
    expect(by.get('enc.blocks.1.attn.qkv.weight')).toMatchObject({ shape: [16, 48], decay: true, layer: 2 });
    expect(by.get('enc.blocks.1.attn.qkv.bias')).toMatchObject({ shape: [48], decay: false });
    expect(by.get('enc.blocks.0.ls1.gamma')).toMatchObject({ shape: [16], init: 'fill', fill: 1e-5, decay: false, layer: 1 });
    expect(by.get('enc.blocks.0.norm2.weight')).toMatchObject({ init: 'ones', decay: false });
    expect(by.get('enc.blocks.0.mlp.fc1.weight')!.shape).toEqual([16, 48]); // SwiGLU: 2H
    expect(by.get('enc.blocks.0.mlp.fc2.weight')!.shape).toEqual([24, 16]);
    expect(by.get('enc.norm.weight')).toMatchObject({ layer: 3, decay: false });
    expect(by.has('enc.fc_norm.weight')).toBe(false);
    expect(vitSpecs({ ...X, noEmbedClass: false }, 16).find((s) => s.name === 'enc.pos_embed')!.shape).toEqual([1, 19, 16]);
    const plain = vitSpecs({ ...X, fcNorm: true, qkvBias: false, layerScale: false, regTokens: 0, mlp: 'gelu' }, 16).map((s) => s.name);
    expect(plain).toContain('enc.fc_norm.bias');
    expect(plain.some((n) => n.includes('qkv.bias') || n.includes('gamma') || n.includes('reg_token') || n === 'enc.norm.weight')).toBe(false);
    expect(vitTrackedLayers(X)).toEqual(['enc.patch_embed.proj.weight', 'enc.blocks.1.mlp.fc2.weight']);
  });

  it('a tile that is not a whole number of patches is refused clearly', () => {
    expect(() => vitSpecs(X, 18)).toThrow(/tileSize 18 .*patch size 4/);
    const params = createParams(vitSpecs(X, 16), 1);
    expect(() => tf.tidy(() => vitForward(params, X, tf.zeros([1, 18, 18, 3])))).toThrow(/tileSize 18/);
    disposeParams(params);
  });

  it('shapes for every pooling, and tensor hygiene in tidy and variableGrads', () => {
    for (const [pool, fcNorm, classToken] of [['cls', false, true], ['mean', true, false], ['cls+mean', false, true], ['cls+mean', true, true]] as const) {
      const enc = { ...X, pool, fcNorm, classToken };
      const params = createParams(vitSpecs(enc, 16), 3);
      const x = tf.randomNormal([3, 16, 16, 3]);
      const before = tf.memory().numTensors;
      const f = tf.tidy(() => vitForward(params, enc, x));
      expect(f.shape).toEqual([3, featureDim(enc)]);
      f.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const { value, grads } = tf.variableGrads(() => vitForward(params, enc, x).square().sum() as tf.Scalar, [...params.values()]);
      expect(Object.keys(grads).length).toBe(params.size);
      value.dispose();
      tf.dispose(Object.values(grads));
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      disposeParams(params);
    }
  });

  it('export -> import round trip is exact for random weights in every family, with a resized grid noted', async () => {
    const cases: [VitFamily, EncoderConfig][] = [
      ['timm-vit', X],
      ['timm-vit', { ...X, noEmbedClass: false, fcNorm: true, pool: 'mean', regTokens: 0, qkvBias: false }],
      ['hf-vit', { ...X, mlp: 'gelu', layerScale: false, regTokens: 0, noEmbedClass: false, pool: 'cls', lnEps: 1e-12 }],
      ['tv-vit', { ...X, mlp: 'gelu', layerScale: false, regTokens: 0, noEmbedClass: false, pool: 'cls' }],
    ];
    for (const [family, enc] of cases) {
      const specs = vitSpecs(enc, 16);
      const values = new Map(specs.map((s, k) => [s.name, Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37 + k))]));
      const exported = exportVit(values, family, enc, 16);
      const source = memTensors(exported.map((t) => [t.name, t] as [string, typeof t]));
      const det = detectVit(source)!;
      expect(det.family).toBe(family);
      const { heads, ...rest } = enc;
      void heads;
      expect(det.options).toMatchObject({
        patch: rest.patch, dim: rest.dim, blocks: rest.blocks, mlpHidden: rest.mlpHidden, mlp: rest.mlp, layerScale: rest.layerScale,
        classToken: rest.classToken, regTokens: rest.regTokens, noEmbedClass: rest.noEmbedClass, posGrid: 4, fcNorm: rest.fcNorm,
        qkvBias: rest.qkvBias, lnEps: rest.lnEps,
      });
      const { values: back, report } = await importVit(source, family, enc, 16);
      for (const [name, v] of values) expect(back.get(name)).toEqual(v);
      expect(report.notes.some((n) => n.includes('resized'))).toBe(false);

      // The same checkpoint at a 24px tile: grid 4 -> 6, prefix-token rows kept.
      const big = await importVit(source, family, enc, 24);
      const pos = big.values.get('enc.pos_embed')!;
      const prefixRows = enc.noEmbedClass ? 0 : (enc.classToken ? 1 : 0) + enc.regTokens;
      expect(pos.length).toBe((prefixRows + 36) * enc.dim);
      expect(pos.subarray(0, prefixRows * enc.dim)).toEqual(values.get('enc.pos_embed')!.subarray(0, prefixRows * enc.dim));
      expect(big.report.notes.some((n) => n.includes('from 4x4 to 6x6'))).toBe(true);
    }
  });

  it('families without a parameter name it as missing (Hugging Face has no registers)', async () => {
    const hfEnc = { ...X, mlp: 'gelu' as const, layerScale: false, regTokens: 0, noEmbedClass: false, pool: 'cls' as const };
    const specs = vitSpecs(hfEnc, 16);
    const values = new Map(specs.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]));
    const source = memTensors(exportVit(values, 'hf-vit', hfEnc, 16).map((t) => [t.name, t] as [string, typeof t]));
    const e = await importVit(source, 'hf-vit', { ...hfEnc, regTokens: 2 }, 16).catch((err) => err);
    expect(e).toBeInstanceOf(WeightMismatchError);
    expect((e as WeightMismatchError).report.missing[0]).toContain('enc.reg_token');
  });

  it('resizePosEmbed: identity at the same grid, constants stay constant', () => {
    const src = Float32Array.from({ length: 16 * 3 }, (_, i) => i);
    expect(resizePosEmbed(src, 4, 4, 3)).toEqual(src);
    const flat = new Float32Array(25 * 2).fill(0.7);
    for (const to of [2, 3, 7, 11]) for (const v of resizePosEmbed(flat, 5, to, 2)) expect(v).toBeCloseTo(0.7, 6);
  });
});

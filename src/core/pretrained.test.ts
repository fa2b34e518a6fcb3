// Pretrained encoders end to end, the way the lab loads them: a weight file (safetensors or a
// torch.save zip) -> detection -> name map -> packed weights [P] -> the lab's encoder forward,
// against features and gradients computed by PyTorch (fixtures/pretrained, scripts/golden).
import { readFileSync } from 'node:fs';
import { relativeL2 } from './metrics.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from './tf.ts';
import { parseConfig, type Config } from './config.ts';
import { encoderForward, encoderSpecs } from './models/encoder.ts';
import { createParams, disposeParams, writeParams } from './params.ts';
import { describePretrained, exportPretrained, loadPretrained } from './pretrained.ts';
import { openWeightFile, writeSafetensors } from './weights/index.ts';

const DIR = new URL('../../fixtures/pretrained/', import.meta.url);
const blobOf = (name: string) => new Blob([readFileSync(new URL(name, DIR))]);
const meta = (id: string) => JSON.parse(readFileSync(new URL(`${id}.json`, DIR), 'utf8')) as { tileSize: number; featureDim: number; options: { heads?: number; dim?: number; truncate?: string | null } };

async function expectations(name: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const wf = await openWeightFile(blobOf(name), name);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of wf.tensors) out.set(k, { shape: t.shape, data: await t.read() });
  return out;
}

/** The lab's config for a fixture: its tile size, and (for a ViT) the head count the shapes cannot tell. */
function baseConfig(id: string, tileSize = meta(id).tileSize): Config {
  const m = meta(id);
  const encoder = m.options.heads ? { kind: 'vit', dim: m.options.dim, heads: m.options.heads } : m.options.truncate ? { kind: 'tv-resnet', truncate: true } : {};
  return parseConfig({ tileSize, microBatch: 2, encoder });
}

/** Features [B, F] of the packed weights on `input` [B, H, W, 3], and d(sum(features * r))/d(input). */
function run(cfg: Config, weights: Float32Array, input: { shape: number[]; data: Float32Array }, r: Float32Array) {
  const specs = encoderSpecs(cfg.encoder, cfg.tileSize);
  const params = createParams(specs, 1);
  writeParams(specs, params, weights);
  const before = tf.memory().numTensors;
  const x = tf.tensor4d(input.data, input.shape as [number, number, number, number]);
  const features = tf.tidy(() => encoderForward(params, cfg.encoder, x));
  const rT = tf.tensor2d(r, features.shape as [number, number]);
  const gradInput = tf.grad((inp: tf.Tensor) => tf.sum(tf.mul(encoderForward(params, cfg.encoder, inp), rT)))(x);
  const out = { features: features.dataSync() as Float32Array, gradInput: gradInput.dataSync() as Float32Array };
  tf.dispose([x, features, rT, gradInput]);
  expect(tf.memory().numTensors).toBe(before);
  disposeParams(params);
  return out;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const CASES = [
  ['tv-resnet18-w8', 'safetensors'], ['tv-resnet18-w8', 'pt'],
  ['tv-resnet50trunc-w8', 'safetensors'], ['tv-resnet50trunc-w8', 'pt'],
  ['timm-vit-ti', 'safetensors'],
  ['timm-vit-x', 'safetensors'], ['timm-vit-x', 'pt'],
  ['hf-vit', 'safetensors'], ['hf-vit', 'pt'],
  ['tv-vit', 'safetensors'], ['tv-vit', 'pt'],
] as const;

describe('pretrained encoders from PyTorch files reproduce PyTorch (cpu backend)', () => {
  it.each(CASES)('%s.%s: features within 1e-5 and input gradients within 1e-4 (relative L2)', async (id, ext) => {
    const cfg = baseConfig(id);
    const p = await loadPretrained(blobOf(`${id}.${ext}`), `${id}.${ext}`, cfg);
    expect(p.featureDim).toBe(meta(id).featureDim);
    expect(p.report.missing).toEqual([]);
    const e = await expectations(`${id}.expect.safetensors`);
    const got = run({ ...cfg, encoder: p.encoder }, p.weights, e.get('input')!, e.get('r')!.data);
    const f = relativeL2(got.features, e.get('features')!.data);
    const g = relativeL2(got.gradInput, e.get('grad.input')!.data);
    console.log(`${id}.${ext} (${p.family}, ${p.params} parameters): features rel L2 ${f.toExponential(2)}, d/dinput rel L2 ${g.toExponential(2)}`);
    expect(f).toBeLessThan(1e-5);
    expect(g).toBeLessThan(1e-4);
    expect(describePretrained(p)).toContain(`${id}.${ext}`);
  });

  it.each([[48, 'expect48'], [24, 'expect24']] as const)('timm-vit-x at tile %i: position embeddings resized bicubically (antialiased) as timm does', async (tile, exp) => {
    const cfg = baseConfig('timm-vit-x', tile);
    const p = await loadPretrained(blobOf('timm-vit-x.safetensors'), 'timm-vit-x.safetensors', cfg);
    expect(p.report.notes.join(' ')).toMatch(/resiz/i);
    const e = await expectations(`timm-vit-x.${exp}.safetensors`);
    const got = run({ ...cfg, encoder: p.encoder }, p.weights, e.get('input')!, e.get('r')!.data);
    const f = relativeL2(got.features, e.get('features')!.data);
    console.log(`timm-vit-x at ${tile} px: features rel L2 ${f.toExponential(2)}`);
    expect(f).toBeLessThan(1e-5);
  });

  it('F16 and BF16 files load the same model to their precision', async () => {
    const cfg = baseConfig('timm-vit-x');
    const full = await loadPretrained(blobOf('timm-vit-x.safetensors'), 'x32', cfg);
    for (const [ext, tol] of [['f16', 1e-3], ['bf16', 8e-3]] as const) {
      const half = await loadPretrained(blobOf(`timm-vit-x.${ext}.safetensors`), ext, cfg);
      const err = relativeL2(half.weights, full.weights);
      expect(err).toBeGreaterThan(0); // really rounded
      expect(err).toBeLessThan(tol);
    }
  });

  it('the .pt and .safetensors twins give identical weights; nesting and prefixes are noted', async () => {
    const a = await loadPretrained(blobOf('timm-vit-x.pt'), 'timm-vit-x.pt', baseConfig('timm-vit-x'));
    const b = await loadPretrained(blobOf('timm-vit-x.safetensors'), 'timm-vit-x.safetensors', baseConfig('timm-vit-x'));
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
    expect(a.report.notes.join(' ')).toMatch(/teacher/);
    expect(a.report.notes.join(' ')).toMatch(/backbone\./);
  });

  it('ResNet-50 trunc lists layer4 and fc as unused, not refused', async () => {
    const p = await loadPretrained(blobOf('tv-resnet50trunc-w8.safetensors'), 'r50', baseConfig('tv-resnet50trunc-w8'));
    expect(p.encoder).toMatchObject({ kind: 'tv-resnet', depth: 50, truncate: true, width: 8 });
    expect(p.report.unused.some((n) => n.startsWith('layer4.'))).toBe(true);
    expect(p.report.unused).toContain('fc.weight');
  });

  it('export writes the family\'s own names and layouts, and re-imports exactly', async () => {
    for (const id of ['timm-vit-x', 'hf-vit', 'tv-vit', 'tv-resnet18-w8']) {
      const cfg = baseConfig(id);
      const p = await loadPretrained(blobOf(`${id}.safetensors`), id, cfg);
      const bytes = writeSafetensors(exportPretrained(p.family, p.encoder, cfg.tileSize, p.weights), { format: 'pt' });
      const original = await openWeightFile(blobOf(`${id}.safetensors`), id);
      const exported = await openWeightFile(new Blob([bytes as Uint8Array<ArrayBuffer>]), 'exported');
      for (const name of exported.tensors.keys()) if (!/running_|num_batches/.test(name)) expect(original.tensors.has(name)).toBe(true);
      const back = await loadPretrained(new Blob([bytes as Uint8Array<ArrayBuffer>]), 'exported.safetensors', { ...cfg, encoder: { ...cfg.encoder, heads: p.encoder.heads } });
      const err = relativeL2(back.weights, p.weights);
      expect(err).toBeLessThan(id.startsWith('tv-resnet') ? 1e-6 : 1e-12);
    }
  });
});

describe('bad weight files are refused with the file name and a reason', () => {
  const cfg = parseConfig({ tileSize: 32 });
  const bytes = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));

  it('a truncated file', async () => {
    const b = bytes('hf-vit.safetensors');
    await expect(loadPretrained(new Blob([b.slice(0, b.length - 1000)]), 'cut.safetensors', cfg)).rejects.toThrow(/cut\.safetensors.*truncated/);
    const t = bytes('hf-vit.pt');
    await expect(loadPretrained(new Blob([t.slice(0, t.length >> 1)]), 'cut.pt', cfg)).rejects.toThrow(/cut\.pt/);
  });
  it('a header over its size limit', async () => {
    const b = new Uint8Array(64);
    new DataView(b.buffer).setBigUint64(0, 200_000_000n, true);
    b.set(new TextEncoder().encode('{"a": {"dtype": "F32"'), 8);
    await expect(loadPretrained(new Blob([b]), 'huge.safetensors', cfg)).rejects.toThrow(/huge\.safetensors.*(limit|MB)/);
  });
  it('an unknown dtype', async () => {
    const header = JSON.stringify({ 'patch_embed.proj.weight': { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } });
    const h = new TextEncoder().encode(header);
    const b = new Uint8Array(8 + h.length + 2);
    new DataView(b.buffer).setBigUint64(0, BigInt(h.length), true);
    b.set(h, 8);
    await expect((await openWeightFile(new Blob([b]), 'f8.safetensors')).tensors.get('patch_embed.proj.weight')!.read()).rejects.toThrow(/f8\.safetensors.*F8_E4M3/);
  });
  it('a pickle that asks to call anything but tensor rebuilding', async () => {
    await expect(loadPretrained(blobOf('evil.pt'), 'evil.pt', cfg)).rejects.toThrow(/evil\.pt.*(system|not allowed|only)/);
  });
  it('an unsupported architecture', async () => {
    const bytes = writeSafetensors([{ name: 'encoder.conv.weight', shape: [4, 3, 3, 3], data: new Float32Array(108) }]);
    await expect(loadPretrained(new Blob([bytes as Uint8Array<ArrayBuffer>]), 'other.safetensors', cfg)).rejects.toThrow(/other\.safetensors: unsupported architecture/);
  });
  it('a tile size the position embeddings cannot be resized to', async () => {
    await expect(loadPretrained(blobOf('hf-vit.safetensors'), 'hf-vit.safetensors', parseConfig({ tileSize: 30 }))).rejects.toThrow(/30.*8|8.*30/);
  });
  it('a mismatch names the missing and mis-shaped keys', async () => {
    const wf = await openWeightFile(blobOf('timm-vit-x.safetensors'), 'x');
    const tensors = [];
    for (const [name, t] of wf.tensors) {
      if (name === 'blocks.1.attn.proj.weight') continue; // missing
      const data = await t.read();
      tensors.push(name === 'blocks.0.norm1.weight' ? { name, shape: [32], data: data.slice(0, 32) } : { name, shape: t.shape, data }); // mis-shaped
    }
    const b = writeSafetensors(tensors);
    await expect(loadPretrained(new Blob([b as Uint8Array<ArrayBuffer>]), 'broken.safetensors', baseConfig('timm-vit-x'))).rejects.toThrow(/blocks\.1\.attn\.proj\.weight[\s\S]*blocks\.0\.norm1\.weight|blocks\.0\.norm1\.weight[\s\S]*blocks\.1\.attn\.proj\.weight/);
  });
});


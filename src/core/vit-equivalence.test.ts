// Gradient equivalence for the pretrained families (ViT, torchvision ResNet) and the fine-tuning
// controls: N ranks with gather / scatter / pseudo-loss against the single-graph reference, from
// the same initial ("pretrained") weights, on the cpu backend with in-process ranks.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from './tf.ts';
import { parseConfig, type Config } from './config.ts';
import { runEquivalence, TOLERANCE, type EquivalenceRow } from './equivalence.ts';
import { syntheticSlides, SyntheticTiles } from './tiles.ts';
import { inProcessRanks } from '../transport/in-process.ts';
import { encoderSpecs } from './models/encoder.ts';
import { packInitialValues, unpack } from './params.ts';
import { encoderLrScales } from './optim/fine-tune.ts';
import { Engine } from './engine.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const slides = syntheticSlides(6, 13, 10);
const VIT = { kind: 'vit', patch: 8, dim: 32, blocks: 2, heads: 2, mlpHidden: 64 };

function config(over: Record<string, unknown>): Config {
  return parseConfig({ seed: 13, tiles: 6, tileSize: 16, microBatch: 2, epochs: 2, dropout: 0, optimizer: { lr: 1e-3 }, ...over });
}

/** "Pretrained" weights: another seed's init, so they differ from what the ranks would draw. */
const pretrainedFor = (cfg: Config) => packInitialValues(encoderSpecs(cfg.encoder, cfg.tileSize), 99);

async function equivalence(cfg: Config, steps = 2): Promise<EquivalenceRow[]> {
  const spec = { kind: 'synthetic' as const, seed: cfg.seed, slides };
  return runEquivalence({
    cfg, slides, ranks: inProcessRanks(cfg.ranks), tileSpec: spec, referenceTiles: new SyntheticTiles(cfg.seed, slides), steps,
    engineOptions: { encoderWeights: pretrainedFor(cfg) },
  });
}

function expectEquivalent(rows: EquivalenceRow[], label: string): void {
  const worst = { loss: 0, param: 0, grad: 0 };
  for (const row of rows) {
    worst.loss = Math.max(worst.loss, row.lossDiff);
    worst.param = Math.max(worst.param, ...Object.values(row.param));
    worst.grad = Math.max(worst.grad, ...Object.values(row.grad));
    expect(row.pass).toBe(true);
  }
  expect(worst.loss).toBeLessThan(TOLERANCE.loss);
  expect(worst.param).toBeLessThan(TOLERANCE.param);
  expect(worst.grad).toBeLessThan(TOLERANCE.grad);
  console.log(`equivalence ${label}: |loss diff| ${worst.loss.toExponential(2)}, params ${worst.param.toExponential(2)}, grads ${worst.grad.toExponential(2)} (normalised L1, worst over ${rows.length} steps)`);
}

describe('ViT: N ranks equal the single-graph reference', () => {
  it.each([1, 2, 3])('plain ViT (class token, GELU), N=%i', async (ranks) => {
    expectEquivalent(await equivalence(config({ ranks, encoder: VIT })), `vit N=${ranks}`);
  });

  it('registers, LayerScale, SwiGLU, no_embed_class, mean pooling with fc_norm, augmentation on', async () => {
    const encoder = { ...VIT, regTokens: 2, layerScale: true, mlp: 'swiglu', noEmbedClass: true, pool: 'mean', fcNorm: true };
    const rows = await equivalence(config({ ranks: 2, encoder, augment: { flip: true, rot90: true, blur: 0.5 } }));
    expectEquivalent(rows, 'vit-x N=2');
  });

  it('starts from the given weights, not the seed\'s', async () => {
    const cfg = config({ ranks: 2, encoder: VIT });
    const w = pretrainedFor(cfg);
    const engine = new Engine(cfg, slides, inProcessRanks(2), { encoderWeights: w });
    await engine.init({ kind: 'synthetic', seed: cfg.seed, slides });
    expect(Array.from(await engine.encoderWeights())).toEqual(Array.from(w));
    await engine.dispose();
  });
});

describe('torchvision ResNet: N ranks equal the single-graph reference', () => {
  it('ResNet-18 (width 4), N=2', async () => {
    expectEquivalent(await equivalence(config({ ranks: 2, tileSize: 32, encoder: { kind: 'tv-resnet', width: 4, depth: 18 } })), 'tv-resnet18 N=2');
  });
  it('ResNet-50 trunc (width 2), N=2', async () => {
    expectEquivalent(await equivalence(config({ ranks: 2, tileSize: 32, encoder: { kind: 'tv-resnet', width: 2, depth: 50, truncate: true } }), 1), 'tv-resnet50-trunc N=2');
  });
});

describe('fine-tuning controls', () => {
  it('layer-wise decay gives each layer lr x decay^(depth - layer); frozen layers get 0', () => {
    const enc = config({ encoder: { ...VIT, layerDecay: 0.5, freezeBlocks: 1 } }).encoder;
    const scales = encoderLrScales(encoderSpecs(enc, 16), enc);
    expect(scales.get('enc.patch_embed.proj.weight')).toBe(0); // stem frozen with the first block
    expect(scales.get('enc.pos_embed')).toBe(0);
    expect(scales.get('enc.blocks.0.attn.qkv.weight')).toBe(0);
    expect(scales.get('enc.blocks.1.attn.qkv.weight')).toBe(0.5); // depth 3 (final norm), block 1 is layer 2
    expect(scales.get('enc.norm.weight')).toBe(1);
    const none = encoderLrScales(encoderSpecs(config({ encoder: VIT }).encoder, 16), config({ encoder: VIT }).encoder);
    expect([...none.values()].every((v) => v === 1)).toBe(true);
  });

  it('frozen blocks stay exactly at their pretrained values, the rest moves, and N ranks still equal the reference', async () => {
    const cfg = config({ ranks: 2, encoder: { ...VIT, freezeBlocks: 1, layerDecay: 0.75 } });
    const rows = await equivalence(cfg);
    expectEquivalent(rows, 'vit frozen stem + block 0, layer decay 0.75, N=2');
    const engine = new Engine(cfg, slides, inProcessRanks(2), { encoderWeights: pretrainedFor(cfg) });
    await engine.init({ kind: 'synthetic', seed: cfg.seed, slides });
    await engine.trainStep();
    const specs = encoderSpecs(cfg.encoder, cfg.tileSize);
    const before = unpack(specs, pretrainedFor(cfg));
    const after = unpack(specs, await engine.encoderWeights());
    expect(Array.from(after.get('enc.patch_embed.proj.weight')!)).toEqual(Array.from(before.get('enc.patch_embed.proj.weight')!));
    expect(Array.from(after.get('enc.blocks.0.mlp.fc1.weight')!)).toEqual(Array.from(before.get('enc.blocks.0.mlp.fc1.weight')!));
    expect(Array.from(after.get('enc.blocks.1.mlp.fc1.weight')!)).not.toEqual(Array.from(before.get('enc.blocks.1.mlp.fc1.weight')!));
    await engine.dispose();
  });

  it('no weight decay on position embeddings, tokens, norms, biases and LayerScale', () => {
    const enc = config({ encoder: { ...VIT, regTokens: 1, layerScale: true } }).encoder;
    const decayed = encoderSpecs(enc, 16).filter((s) => s.decay).map((s) => s.name);
    expect(decayed.length).toBeGreaterThan(0);
    expect(decayed.every((n) => n.endsWith('.weight') && !/norm|pos_embed|token|gamma/.test(n))).toBe(true);
  });
});

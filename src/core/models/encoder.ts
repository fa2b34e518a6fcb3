// Tile encoders as pure functions of named parameters. Input [B, S, S, 3] normalised RGB,
// output [B, D] features. No batch statistics anywhere (docs/DESIGN.md, contract 2): GroupNorm,
// or a frozen BatchNorm that is a fixed per-channel affine at inference.
// This file holds the two encoders trained from scratch (tiny CNN, GroupNorm ResNet) and
// dispatches to the pretrained families: torchvision's ResNet (tv-resnet.ts) and ViT (vit.ts).
import { tf, type Tensor } from '../tf.ts';
import type { EncoderConfig } from '../config.ts';
import type { ParamSpec, Params } from '../params.ts';
import { tvResnetForward, tvResnetSpecs, tvResnetTrackedLayers } from './tv-resnet.ts';
import { vitForward, vitSpecs, vitTrackedLayers } from './vit.ts';

const conv = (name: string, k: number, cin: number, cout: number, bias: boolean): ParamSpec[] => [
  { name: `${name}.w`, shape: [k, k, cin, cout], init: 'he', decay: true },
  ...(bias ? [{ name: `${name}.b`, shape: [cout], init: 'zeros' as const, decay: false }] : []),
];
const norm = (name: string, c: number): ParamSpec[] => [
  { name: `${name}.gamma`, shape: [c], init: 'ones', decay: false },
  { name: `${name}.beta`, shape: [c], init: 'zeros', decay: false },
];

/** Largest group count <= 32 that divides the channels. */
export function groupsFor(channels: number): number {
  for (let g = Math.min(32, channels); g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

const BLOCKS: Record<18 | 34 | 50, number[]> = { 18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3] };

interface Block {
  name: string;
  cin: number;
  cout: number;
  stride: number;
}

function resnetBlocks(cfg: EncoderConfig): Block[] {
  const blocks: Block[] = [];
  let cin = cfg.width;
  BLOCKS[cfg.depth].forEach((count, stage) => {
    const cout = cfg.width * 2 ** stage;
    for (let i = 0; i < count; i++) {
      blocks.push({ name: `enc.layer${stage + 1}.${i}`, cin, cout, stride: i === 0 && stage > 0 ? 2 : 1 });
      cin = cout;
    }
  });
  return blocks;
}

/** The encoder's parameters. tileSize matters only to a ViT (its position table covers the patch grid). */
export function encoderSpecs(cfg: EncoderConfig, tileSize: number): ParamSpec[] {
  const w = cfg.width;
  if (cfg.kind === 'vit') return vitSpecs(cfg, tileSize);
  if (cfg.kind === 'tv-resnet') return tvResnetSpecs(cfg);
  if (cfg.kind === 'tiny-cnn') {
    return [...conv('enc.conv1', 3, 3, w, true), ...conv('enc.conv2', 3, w, 2 * w, true), ...conv('enc.conv3', 3, 2 * w, 4 * w, true)];
  }
  const specs = [...conv('enc.stem', 7, 3, w, false), ...norm('enc.stem.norm', w)];
  for (const b of resnetBlocks(cfg)) {
    specs.push(...conv(`${b.name}.conv1`, 3, b.cin, b.cout, false), ...norm(`${b.name}.norm1`, b.cout));
    specs.push(...conv(`${b.name}.conv2`, 3, b.cout, b.cout, false), ...norm(`${b.name}.norm2`, b.cout));
    if (b.stride !== 1 || b.cin !== b.cout) {
      specs.push(...conv(`${b.name}.down`, 1, b.cin, b.cout, false), ...norm(`${b.name}.down.norm`, b.cout));
    }
  }
  return specs;
}

/** Names of the layers the equivalence figure tracks: the first and a deep encoder layer. */
export function trackedEncoderLayers(cfg: EncoderConfig): [string, string] {
  if (cfg.kind === 'vit') return vitTrackedLayers(cfg);
  if (cfg.kind === 'tv-resnet') return tvResnetTrackedLayers(cfg);
  if (cfg.kind === 'tiny-cnn') return ['enc.conv1.w', 'enc.conv3.w'];
  const last = resnetBlocks(cfg).at(-1)!;
  return ['enc.stem.w', `${last.name}.conv2.w`];
}

function normalize(p: Params, name: string, x: Tensor, cfg: EncoderConfig): Tensor {
  const gamma = p.get(`${name}.gamma`)!;
  const beta = p.get(`${name}.beta`)!;
  if (cfg.norm === 'frozen-bn') return x.mul(gamma).add(beta); // running mean 0, var 1: a fixed affine
  const [b, h, w, c] = x.shape as number[];
  const g = groupsFor(c);
  const grouped = x.reshape([b, h, w, g, c / g]);
  const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
  const y = grouped.sub(mean).div(variance.add(1e-5).sqrt()).reshape([b, h, w, c]);
  return y.mul(gamma).add(beta);
}

const conv2d = (p: Params, name: string, x: Tensor, stride: number) =>
  tf.conv2d(x as tf.Tensor4D, p.get(`${name}.w`)! as tf.Tensor4D, stride, 'same');

/** x [B, S, S, 3] -> features [B, D]. */
export function encoderForward(p: Params, cfg: EncoderConfig, x: Tensor): Tensor {
  if (cfg.kind === 'vit') return vitForward(p, cfg, x);
  if (cfg.kind === 'tv-resnet') return tvResnetForward(p, cfg, x);
  if (cfg.kind === 'tiny-cnn') {
    let h = x;
    for (const name of ['enc.conv1', 'enc.conv2', 'enc.conv3']) {
      h = tf.relu(conv2d(p, name, h, 2).add(p.get(`${name}.b`)!));
    }
    return tf.mean(h, [1, 2]); // [B, 4w]
  }
  let h = tf.relu(normalize(p, 'enc.stem.norm', conv2d(p, 'enc.stem', x, 2), cfg));
  h = tf.maxPool(h as tf.Tensor4D, 3, 2, 'same');
  for (const b of resnetBlocks(cfg)) {
    let y = tf.relu(normalize(p, `${b.name}.norm1`, conv2d(p, `${b.name}.conv1`, h, b.stride), cfg));
    y = normalize(p, `${b.name}.norm2`, conv2d(p, `${b.name}.conv2`, y, 1), cfg);
    const shortcut = p.has(`${b.name}.down.w`)
      ? normalize(p, `${b.name}.down.norm`, conv2d(p, `${b.name}.down`, h, b.stride), cfg)
      : h;
    h = tf.relu(y.add(shortcut));
  }
  return tf.mean(h, [1, 2]); // [B, 8w]
}

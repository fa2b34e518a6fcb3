// torchvision's ResNet-18/34/50 exactly as torchvision computes it, as a pure function of named
// parameters, for pretrained weights (the name map is tv-resnet-import.ts).
//
// What makes it exact (and what the GroupNorm 'resnet' of encoder.ts does differently):
// - every conv pads symmetrically by k // 2 (torchvision's padding=k//2). tfjs 'same' pads
//   asymmetrically for stride 2 on even sizes (0 before, 1 after for 3x3; 2 and 3 for 7x7), which
//   shifts every strided sampling grid by one pixel;
// - the stem max pool is 3x3 stride 2 padding 1 with -inf padding. tfjs maxPool with a numeric pad
//   skips the out-of-range taps on both the cpu and the webgpu backend (pool_utils.js `pool`,
//   pool_webgpu.js `continue`), which is -inf padding; after the ReLU it would equal zero padding;
// - ResNet-50 uses torchvision's Bottleneck v1.5: 1x1 -> 3x3 (the stride sits here) -> 1x1 with
//   expansion 4, downsample = 1x1 conv (stride) + BN when the stride or the channel count changes;
// - BatchNorm is frozen and folded (contract 2, no batch statistics): y = x * scale + shift, with
//   scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale (eps 1e-5).
//
// Names: `enc.` + torchvision's module names; a conv keeps `.weight` (tfjs HWIO [kh, kw, in, out]),
// a folded BatchNorm has `.scale` and `.shift` [C].
import { tf, type Tensor } from '../tf.ts';
import type { EncoderConfig } from '../config.ts';
import type { ParamSpec, Params } from '../params.ts';

/** torchvision's BatchNorm2d eps. */
export const BN_EPS = 1e-5;

/** Blocks per stage (layer1..layer4). */
export const TV_RESNET_BLOCKS: Record<18 | 34 | 50, readonly number[]> = { 18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3] };

/** One conv of a block and the BatchNorm after it, by torchvision module names (no `enc.`). */
export interface TvConv {
  conv: string;
  bn: string;
  k: number;
  cin: number;
  cout: number;
  stride: number;
}

export interface TvBlock {
  /** `layer{stage}.{index}` */
  name: string;
  stage: number;
  index: number;
  /** Running block index across layer1..layer4 (0-based); the block's `layer` is 1 + this. */
  order: number;
  /** conv1, conv2 (BasicBlock) or conv1, conv2, conv3 (Bottleneck), in order. */
  convs: TvConv[];
  /** The shortcut's 1x1 conv + BN (`downsample.0`, `downsample.1`), where torchvision has one. */
  down: TvConv | null;
  cin: number;
  cout: number;
}

const bottleneck = (depth: number) => depth === 50;

/**
 * torchvision's block list for a depth and base width; `stages` = 3 stops after layer3. The
 * default follows enc.truncate.
 */
export function tvResnetBlocks(enc: Pick<EncoderConfig, 'depth' | 'width' | 'truncate'>, stages = enc.truncate ? 3 : 4): TvBlock[] {
  const expansion = bottleneck(enc.depth) ? 4 : 1;
  const blocks: TvBlock[] = [];
  let inplanes = enc.width;
  TV_RESNET_BLOCKS[enc.depth].slice(0, stages).forEach((count, s) => {
    const planes = enc.width * 2 ** s;
    for (let i = 0; i < count; i++) {
      const name = `layer${s + 1}.${i}`;
      const stride = i === 0 && s > 0 ? 2 : 1;
      const cout = planes * expansion;
      const c = (n: number, k: number, cin: number, co: number, st: number): TvConv => ({ conv: `${name}.conv${n}`, bn: `${name}.bn${n}`, k, cin, cout: co, stride: st });
      const convs = expansion === 4
        ? [c(1, 1, inplanes, planes, 1), c(2, 3, planes, planes, stride), c(3, 1, planes, cout, 1)]
        : [c(1, 3, inplanes, planes, stride), c(2, 3, planes, planes, 1)];
      const down = stride !== 1 || inplanes !== cout
        ? { conv: `${name}.downsample.0`, bn: `${name}.downsample.1`, k: 1, cin: inplanes, cout, stride }
        : null;
      blocks.push({ name, stage: s + 1, index: i, order: blocks.length, convs, down, cin: inplanes, cout });
      inplanes = cout;
    }
  });
  return blocks;
}

/** The stem: conv1 7x7 stride 2, 3 -> width, and bn1. */
export const tvStem = (width: number): TvConv => ({ conv: 'conv1', bn: 'bn1', k: 7, cin: 3, cout: width, stride: 2 });

function convSpecs(c: TvConv, layer: number): ParamSpec[] {
  return [
    { name: `enc.${c.conv}.weight`, shape: [c.k, c.k, c.cin, c.cout], init: 'he', decay: true, layer },
    { name: `enc.${c.bn}.scale`, shape: [c.cout], init: 'ones', decay: false, layer },
    { name: `enc.${c.bn}.shift`, shape: [c.cout], init: 'zeros', decay: false, layer },
  ];
}

/**
 * The parameters in torchvision's state-dict order: the stem (layer 0), then every block
 * (layer 1 + its running index) with its convs and BNs, then its downsample. Nothing after the
 * last block (no fc).
 */
export function tvResnetSpecs(enc: EncoderConfig): ParamSpec[] {
  const specs = convSpecs(tvStem(enc.width), 0);
  for (const b of tvResnetBlocks(enc)) {
    for (const c of b.convs) specs.push(...convSpecs(c, 1 + b.order));
    if (b.down) specs.push(...convSpecs(b.down, 1 + b.order));
  }
  return specs;
}

/** The layers the equivalence figure tracks: the stem conv and the last block's last conv. */
export function tvResnetTrackedLayers(enc: EncoderConfig): [string, string] {
  const last = tvResnetBlocks(enc).at(-1)!;
  return [`enc.${tvStem(enc.width).conv}.weight`, `enc.${last.convs.at(-1)!.conv}.weight`];
}

type Padding = 'torch' | 'tf-same';

/** conv (symmetric padding k // 2, no bias) then the folded BN: [B, H, W, cin] -> [B, H', W', cout]. */
function convBn(p: Params, c: TvConv, x: tf.Tensor4D, padding: Padding): tf.Tensor4D {
  const w = p.get(`enc.${c.conv}.weight`)! as tf.Tensor4D;
  const h = c.k >> 1;
  const pad: 'valid' | 'same' | tf.backend_util.ExplicitPadding = padding === 'tf-same' ? 'same' : h === 0 ? 'valid' : [[0, 0], [h, h], [h, h], [0, 0]];
  const y = tf.conv2d(x, w, c.stride, pad);
  return y.mul(p.get(`enc.${c.bn}.scale`)!).add(p.get(`enc.${c.bn}.shift`)!);
}

function forward(p: Params, enc: EncoderConfig, x: Tensor, padding: Padding): Tensor {
  // x [B, S, S, 3] -> conv1 7x7/2 [B, S/2, S/2, w] -> bn1, relu
  let h = tf.relu(convBn(p, tvStem(enc.width), x as tf.Tensor4D, padding));
  // maxpool 3x3/2, pad 1 (-inf: tfjs skips taps outside the input) -> [B, S/4, S/4, w]
  h = tf.maxPool(h, 3, 2, padding === 'tf-same' ? 'same' : 1);
  for (const b of tvResnetBlocks(enc)) {
    // [B, H, W, cin] -> [B, H / stride, W / stride, cout]
    let y = h;
    b.convs.forEach((c, i) => {
      y = convBn(p, c, y, padding);
      if (i < b.convs.length - 1) y = tf.relu(y);
    });
    const shortcut = b.down ? convBn(p, b.down, h, padding) : h;
    h = tf.relu(y.add<tf.Tensor4D>(shortcut));
  }
  // global average pool after layer4 (or layer3 when truncated): [B, H, W, F] -> [B, F]
  return tf.mean(h, [1, 2]);
}

/** x [B, S, S, 3] normalised RGB -> features [B, F] (F = featureDim(enc)), torchvision's numerics. */
export function tvResnetForward(p: Params, enc: EncoderConfig, x: Tensor): Tensor {
  return forward(p, enc, x, 'torch');
}

/**
 * For tests only: the same network with tfjs 'same' padding on every conv and the max pool (what
 * a naive port computes), to show that the exact padding matters.
 */
export function tvResnetForwardTfSame(p: Params, enc: EncoderConfig, x: Tensor): Tensor {
  return forward(p, enc, x, 'tf-same');
}

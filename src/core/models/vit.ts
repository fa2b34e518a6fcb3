// A Vision Transformer with timm's semantics (timm/models/vision_transformer.py), as pure functions
// of named parameters. The lab's names are `enc.` + timm's state-dict names, in tfjs layouts
// (dense [in, out], conv [h, w, in, out]); vit-import.ts maps timm, Hugging Face and torchvision
// checkpoints onto them. No batch statistics anywhere (LayerNorm is per token).
import { tf, type Tensor } from '../tf.ts';
import type { EncoderConfig } from '../config.ts';
import type { ParamSpec, Params } from '../params.ts';

/** Patch-grid side g = tileSize / patch; throws when the tile is not a whole number of patches. */
export function vitGrid(enc: Pick<EncoderConfig, 'patch'>, tileSize: number): number {
  if (!Number.isInteger(tileSize) || tileSize <= 0 || tileSize % enc.patch !== 0) {
    throw new Error(`ViT: tileSize ${tileSize} is not a multiple of the patch size ${enc.patch} (the tile must be a whole number of patches)`);
  }
  return tileSize / enc.patch;
}

/** Prefix tokens before the patch tokens: the class token, then the registers. */
export const vitPrefixTokens = (enc: Pick<EncoderConfig, 'classToken' | 'regTokens'>) => (enc.classToken ? 1 : 0) + enc.regTokens;

/** Rows of pos_embed for a g x g grid: g², plus the prefix tokens unless noEmbedClass. */
export const vitPosLength = (enc: Pick<EncoderConfig, 'classToken' | 'regTokens' | 'noEmbedClass'>, grid: number) =>
  grid * grid + (enc.noEmbedClass ? 0 : vitPrefixTokens(enc));

function check(enc: EncoderConfig): void {
  if (enc.dim % enc.heads !== 0) throw new Error(`ViT: dim ${enc.dim} is not divisible by heads ${enc.heads}`);
  if (enc.pool !== 'mean' && !enc.classToken) throw new Error(`ViT: pool '${enc.pool}' needs a class token (classToken is false)`);
}

export function vitSpecs(enc: EncoderConfig, tileSize: number): ParamSpec[] {
  check(enc);
  const g = vitGrid(enc, tileSize);
  const { patch: P, dim: D, mlpHidden: H } = enc;
  const weight = (name: string, shape: number[], layer: number): ParamSpec => ({ name, shape, init: 'normal02', decay: true, layer });
  const bias = (name: string, n: number, layer: number): ParamSpec => ({ name, shape: [n], init: 'zeros', decay: false, layer });
  const norm = (name: string, layer: number): ParamSpec[] => [
    { name: `${name}.weight`, shape: [D], init: 'ones', decay: false, layer },
    bias(`${name}.bias`, D, layer),
  ];
  const gamma = (name: string, layer: number): ParamSpec => ({ name, shape: [D], init: 'fill', fill: 1e-5, decay: false, layer });

  const specs: ParamSpec[] = [weight('enc.patch_embed.proj.weight', [P, P, 3, D], 0), bias('enc.patch_embed.proj.bias', D, 0)];
  if (enc.classToken) specs.push({ name: 'enc.cls_token', shape: [1, 1, D], init: 'normal02', decay: false, layer: 0 });
  if (enc.regTokens > 0) specs.push({ name: 'enc.reg_token', shape: [1, enc.regTokens, D], init: 'normal02', decay: false, layer: 0 });
  specs.push({ name: 'enc.pos_embed', shape: [1, vitPosLength(enc, g), D], init: 'normal02', decay: false, layer: 0 });
  for (let i = 0; i < enc.blocks; i++) {
    const b = `enc.blocks.${i}`;
    const layer = i + 1;
    specs.push(...norm(`${b}.norm1`, layer));
    specs.push(weight(`${b}.attn.qkv.weight`, [D, 3 * D], layer)); // output columns: q, k, v
    if (enc.qkvBias) specs.push(bias(`${b}.attn.qkv.bias`, 3 * D, layer));
    specs.push(weight(`${b}.attn.proj.weight`, [D, D], layer), bias(`${b}.attn.proj.bias`, D, layer));
    if (enc.layerScale) specs.push(gamma(`${b}.ls1.gamma`, layer));
    specs.push(...norm(`${b}.norm2`, layer));
    const fc1 = enc.mlp === 'swiglu' ? 2 * H : H;
    specs.push(weight(`${b}.mlp.fc1.weight`, [D, fc1], layer), bias(`${b}.mlp.fc1.bias`, fc1, layer));
    specs.push(weight(`${b}.mlp.fc2.weight`, [H, D], layer), bias(`${b}.mlp.fc2.bias`, D, layer));
    if (enc.layerScale) specs.push(gamma(`${b}.ls2.gamma`, layer));
  }
  specs.push(...norm(enc.fcNorm ? 'enc.fc_norm' : 'enc.norm', enc.blocks + 1));
  return specs;
}

/** The layers the equivalence figure tracks: the patch embedding and the last block's fc2. */
export function vitTrackedLayers(enc: EncoderConfig): [string, string] {
  return ['enc.patch_embed.proj.weight', `enc.blocks.${enc.blocks - 1}.mlp.fc2.weight`];
}

const get = (p: Params, name: string): Tensor => {
  const v = p.get(name);
  if (!v) throw new Error(`ViT: parameter ${name} is missing`);
  return v;
};

/** LayerNorm over the last axis with biased variance (PyTorch's), x [N, D]. */
function layerNorm(p: Params, name: string, x: Tensor, eps: number): Tensor {
  const { mean, variance } = tf.moments(x, -1, true); // [N, 1] each
  const y = x.sub(mean).mul(tf.rsqrt(variance.add(eps)));
  return y.mul(get(p, `${name}.weight`)).add(get(p, `${name}.bias`));
}

/** x [N, in] @ W [in, out] + b -> [N, out]. */
function linear(p: Params, name: string, x: Tensor): Tensor {
  const y = tf.matMul(x as tf.Tensor2D, get(p, `${name}.weight`) as tf.Tensor2D);
  const b = p.get(`${name}.bias`);
  return b ? y.add(b) : y;
}

/**
 * Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's nn.GELU(). tf.erf exists on the cpu and
 * webgpu backends (tfjs-backend-webgpu registers an Erf kernel, kernels/Erf.ts) and has a gradient
 * (tfjs-core gradients/Erf_grad: 2/sqrt(pi) exp(-x²), exact). Both kernels evaluate Abramowitz &
 * Stegun 7.1.26 (error <= 1.5e-7 in exact arithmetic); measured on [-5, 5]: max abs error 1.7e-7 on
 * cpu, 4.7e-7 on webgpu (SwiftShader, float32 exp in the shader). The ViT fixtures agree with
 * PyTorch to ~1e-6 relative on both backends, so no erf of our own is needed.
 */
const gelu = (x: Tensor): Tensor => x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5);

/** Multi-head self-attention, h [B*T, D] (normalised tokens) -> [B*T, D]. */
function attention(p: Params, name: string, h: Tensor, enc: EncoderConfig, B: number, T: number): Tensor {
  const D = enc.dim;
  const nh = enc.heads;
  const hd = D / nh;
  const qkv = linear(p, `${name}.qkv`, h); // [B*T, 3D], columns q | k | v, each head-major like timm
  const heads = (t: Tensor) => t.reshape([B, T, nh, hd]).transpose([0, 2, 1, 3]).reshape([B * nh, T, hd]);
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads); // each [B*nh, T, hd]
  const scores = tf.matMul(q.mul(hd ** -0.5) as tf.Tensor3D, k as tf.Tensor3D, false, true); // [B*nh, T, T]
  const attn = tf.softmax(scores, -1); // over keys
  const out = tf.matMul(attn as tf.Tensor3D, v as tf.Tensor3D); // [B*nh, T, hd]
  const merged = out.reshape([B, nh, T, hd]).transpose([0, 2, 1, 3]).reshape([B * T, D]);
  return linear(p, `${name}.proj`, merged); // [B*T, D]
}

/** MLP, h [B*T, D] -> [B*T, D]: GELU, or packed SwiGLU (SiLU(first half) * second half). */
function mlp(p: Params, name: string, h: Tensor, enc: EncoderConfig): Tensor {
  let y = linear(p, `${name}.fc1`, h); // [B*T, H] or [B*T, 2H]
  if (enc.mlp === 'swiglu') {
    const [a, b] = tf.split(y, 2, 1); // [B*T, H] each
    y = a.mul(tf.sigmoid(a)).mul(b); // SiLU(a) * b (timm GluMlp, gate_last=False)
  } else {
    y = gelu(y);
  }
  return linear(p, `${name}.fc2`, y); // [B*T, D]
}

/** x [B, S, S, 3] normalised RGB -> features [B, D] ([B, 2D] for 'cls+mean'). */
export function vitForward(p: Params, enc: EncoderConfig, x: Tensor): Tensor {
  check(enc);
  const [B, S] = x.shape as number[];
  const D = enc.dim;
  const g = vitGrid(enc, S);
  const N = g * g;
  const prefix = vitPrefixTokens(enc);
  const T = prefix + N;
  const pos = get(p, 'enc.pos_embed'); // [1, L, D]
  if (pos.shape[1] !== vitPosLength(enc, g)) {
    throw new Error(`ViT: pos_embed has ${pos.shape[1]} rows, a ${S}px tile needs ${vitPosLength(enc, g)} (grid ${g}x${g}); resize it on import`);
  }

  // Patch embedding: conv stride = kernel = P, 'valid' -> [B, g, g, D] -> [B, g², D] (row-major over y, x like timm's flatten).
  let t: Tensor = tf
    .conv2d(x as tf.Tensor4D, get(p, 'enc.patch_embed.proj.weight') as tf.Tensor4D, enc.patch, 'valid')
    .add(get(p, 'enc.patch_embed.proj.bias'))
    .reshape([B, N, D]);
  const prefixTokens: Tensor[] = [];
  if (enc.classToken) prefixTokens.push(tf.tile(get(p, 'enc.cls_token'), [B, 1, 1])); // [B, 1, D]
  if (enc.regTokens > 0) prefixTokens.push(tf.tile(get(p, 'enc.reg_token'), [B, 1, 1])); // [B, R, D]
  if (enc.noEmbedClass) {
    t = t.add(pos); // pos [1, g², D] on the patch tokens only
    if (prefixTokens.length) t = tf.concat([...prefixTokens, t], 1); // [B, T, D]
  } else {
    if (prefixTokens.length) t = tf.concat([...prefixTokens, t], 1); // [B, T, D]
    t = t.add(pos); // pos [1, T, D]
  }

  // Blocks on the flat token matrix [B*T, D].
  let h = t.reshape([B * T, D]);
  for (let i = 0; i < enc.blocks; i++) {
    const b = `enc.blocks.${i}`;
    let a = attention(p, `${b}.attn`, layerNorm(p, `${b}.norm1`, h, enc.lnEps), enc, B, T);
    if (enc.layerScale) a = a.mul(get(p, `${b}.ls1.gamma`));
    h = h.add(a);
    let m = mlp(p, `${b}.mlp`, layerNorm(p, `${b}.norm2`, h, enc.lnEps), enc);
    if (enc.layerScale) m = m.mul(get(p, `${b}.ls2.gamma`));
    h = h.add(m);
  }

  // Head: `norm` on every token before pooling, or `fc_norm` on the pooled vector(s) after it.
  if (!enc.fcNorm) h = layerNorm(p, 'enc.norm', h, enc.lnEps);
  const tokens = h.reshape([B, T, D]);
  const pooled: Tensor[] = [];
  if (enc.pool !== 'mean') pooled.push(tokens.slice([0, 0, 0], [B, 1, D]).reshape([B, D])); // class token
  if (enc.pool !== 'cls') pooled.push(tokens.slice([0, prefix, 0], [B, N, D]).mean(1)); // mean of the patch tokens [B, D]
  const out = pooled.map((v) => (enc.fcNorm ? layerNorm(p, 'enc.fc_norm', v, enc.lnEps) : v));
  return out.length === 1 ? out[0] : tf.concat(out, 1); // [B, D] or [B, 2D]
}

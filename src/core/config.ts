// The lab's whole configuration: one typed, validated schema with defaults, round-tripping
// through the URL hash so every lesson and demo is a link. Pure: no DOM, no transport.
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
const bool = z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean());

export const EncoderSchema = z.object({
  /**
   * 'tiny-cnn': 3 strided convs, for tests and CPU demos. 'resnet': ResNet-18/34-like trunk with
   * GroupNorm, trained from scratch. 'tv-resnet': torchvision's ResNet-18/34/50 exactly (symmetric
   * padding, bottlenecks, BatchNorm folded from running statistics), for pretrained weights.
   * 'vit': a Vision Transformer with timm's semantics (timm, Hugging Face and torchvision weights).
   */
  kind: z.enum(['tiny-cnn', 'resnet', 'tv-resnet', 'vit']).default('tiny-cnn'),
  /** Base channel width (ResNet uses 64; the tiny CNN 8). */
  width: int(1, 256).default(8),
  /** ResNet depth: basic blocks [2,2,2,2] (18), [3,4,6,3] (34), bottlenecks [3,4,6,3] (50, tv-resnet only). */
  depth: z.coerce.number().pipe(z.union([z.literal(18), z.literal(34), z.literal(50)])).default(18),
  /** 'resnet': GroupNorm (default) or BatchNorm frozen in inference mode. Never batch statistics (docs/DESIGN.md, contract 2). */
  norm: z.enum(['group', 'frozen-bn']).default('group'),
  /** tv-resnet: cut after layer3 and average-pool (the 1024-d "ResNet-50 trunc" of CLAM at width 64). */
  truncate: bool.default(false),
  /** ViT: patch size P (8, 14 or 16 in the common models). */
  patch: int(1, 64).default(16),
  /** ViT: embedding dimension (Ti 192, S 384, B 768, L 1024). */
  dim: int(8, 4096).default(192),
  /** ViT: number of transformer blocks. */
  blocks: int(1, 64).default(12),
  /** ViT: attention heads (dim / 64 in the common models). */
  heads: int(1, 64).default(3),
  /** ViT: hidden width H of the MLP (4 x dim in most models; SwiGLU's fc1 then outputs 2H). */
  mlpHidden: int(1, 65536).default(768),
  /** ViT: exact GELU (erf), or packed SwiGLU (SiLU on the first half of fc1's output, times the second). */
  mlp: z.enum(['gelu', 'swiglu']).default('gelu'),
  /** ViT: LayerScale gammas on both residual branches. */
  layerScale: bool.default(false),
  /** ViT: a class token. */
  classToken: bool.default(true),
  /** ViT: register tokens after the class token. */
  regTokens: int(0, 64).default(0),
  /** ViT: position embeddings cover only the patch tokens (timm's no_embed_class). */
  noEmbedClass: bool.default(false),
  /** ViT: the grid side the checkpoint's position embeddings were made for (0: tileSize / patch). Resized bicubically. */
  posGrid: int(0, 1024).default(0),
  /** ViT output: the class token, the mean of the patch tokens, or both concatenated (Virchow). */
  pool: z.enum(['cls', 'mean', 'cls+mean']).default('cls'),
  /** ViT: LayerNorm after pooling (timm's fc_norm) instead of on every token before it. */
  fcNorm: bool.default(false),
  /** ViT: LayerNorm epsilon (timm and torchvision 1e-6, Hugging Face 1e-12). */
  lnEps: num(0, 1).default(1e-6),
  /** ViT: bias on the q, k, v projections. */
  qkvBias: bool.default(true),
  /** Input normalisation per channel (R,G,B): (x / 255 - mean) / std. ImageNet's by default. */
  mean: z.string().regex(/^-?[\d.e-]+,-?[\d.e-]+,-?[\d.e-]+$/, 'three comma-separated numbers').default('0.485,0.456,0.406'),
  std: z.string().regex(/^[\d.e-]+,[\d.e-]+,[\d.e-]+$/, 'three comma-separated positive numbers').default('0.229,0.224,0.225'),
  /**
   * Name of the pretrained weight file this run starts from ('' = the seed's random weights).
   * A link cannot carry the file: the lab asks for it when it is missing.
   */
  pretrained: z.string().max(200).default(''),
  /** Fine-tuning: freeze the stem / patch embedding and the first N blocks (0: train everything). */
  freezeBlocks: int(0, 64).default(0),
  /** Fine-tuning: freeze the stem / patch embedding, tokens and position embeddings. */
  freezeStem: bool.default(false),
  /** Layer-wise learning-rate decay: block i gets lr x decay^(blocks + 1 - (i + 1)); 1 = off (0.65 ViT-B, 0.75 ViT-L in MAE). */
  layerDecay: num(0.01, 1).default(1),
});

export const OptimizerSchema = z.object({
  lr: num(0, 10).default(1e-3),
  /** Cosine decay floor. */
  minLr: num(0, 10).default(1e-5),
  warmupEpochs: num(0, 1000).default(0),
  /** Weight decay follows a cosine from weightDecay to weightDecayEnd (0.04 -> 0.4 in the paper). */
  weightDecay: num(0, 10).default(0.04),
  weightDecayEnd: num(0, 10).default(0.4),
  beta1: num(0, 0.999999).default(0.9),
  beta2: num(0, 0.999999).default(0.999),
  eps: num(0, 1).default(1e-8),
  /** Learning-rate multiplier for the encoder (fine-tuning usually wants it smaller). */
  encoderLrScale: num(0, 100).default(1),
  /**
   * Slides per optimizer step: gradients of this many consecutive slides (steps) are averaged,
   * then both optimizers apply once (docs/PLATEAU.md). 1 = update after every slide.
   */
  accumulateSlides: int(1, 256).default(1),
});

export const AugmentSchema = z.object({
  flip: bool.default(true),
  rot90: bool.default(true),
  /** Probability of a 3x3 Gaussian blur per tile. */
  blur: num(0, 1).default(0.5),
});

/**
 * The tile grid ("magnification as configuration"): tiles are cut `tile` px square at `mpp` µm per
 * pixel (a field of view of tile x mpp µm), read from the best pyramid level and resampled from
 * there; the encoder's input size is `tileSize`, its own setting. Defaults: today's grid.
 */
export const GridSchema = z.object({
  /** µm per pixel at which tiles are cut (0.25 about 40x, 0.5 about 20x, 1 about 10x). */
  mpp: num(0.05, 32).default(0.5),
  /** Tile side in pixels at grid.mpp (224 px at 0.5 µm/px: a 112 µm square). */
  tile: int(8, 8192).default(224),
  /** Overlap of neighbouring tiles in pixels at grid.mpp (stride = tile - overlap). */
  overlap: int(0, 8191).default(0),
  /** Keep tiles whose tissue fraction is at least this. */
  minTissue: num(0, 1).default(0.25),
  /** Gray level (0-255) above which a pixel is background; 0 = Otsu's threshold clamped to 170..235. */
  tissueThreshold: int(0, 255).default(0),
});

export const ConfigSchema = z.object({
  seed: int(0, 2 ** 31 - 1).default(7),
  encoder: EncoderSchema.default(EncoderSchema.parse({})),
  /** Gated-attention MIL: 'small' (attention D = 256) or 'big' (D = 384); hidden 512. */
  aggregator: z.enum(['small', 'big']).default('small'),
  /** K: tiles per slide per step. */
  tiles: int(1, 65536).default(16),
  /** N: encoder ranks (workers). */
  ranks: int(1, 16).default(2),
  /** Fixed micro-batch for encode and recompute; memory is O(microBatch), not O(K). */
  microBatch: int(1, 4096).default(8),
  tileSize: int(8, 1024).default(64),
  /** The tile grid cut from slide files (µm per pixel, tile, overlap, tissue); tileSize is the encoder input. */
  grid: GridSchema.default(GridSchema.parse({})),
  epochs: int(1, 10000).default(3),
  optimizer: OptimizerSchema.default(OptimizerSchema.parse({})),
  augment: AugmentSchema.default(AugmentSchema.parse({})),
  /** Dropout after the aggregator's two hidden layers (0.25 in the GMA reference). */
  dropout: num(0, 0.95).default(0.25),
  /**
   * Normalisation of each tile's feature vector before the aggregator: 'none'; 'layer' (zero mean,
   * unit variance over D, no learned scale, a LayerNorm without affine); 'l2' (unit length times
   * sqrt(D), so entries are O(1) whatever the encoder's scale). docs/PLATEAU.md.
   */
  featureNorm: z.enum(['none', 'layer', 'l2']).default('none'),
  /** Loss weight of the positive class (0.7 in the paper's recipe); the negative class gets 1 - w. */
  positiveWeight: num(0.01, 0.99).default(0.5),
  /** Train only the aggregator on features of a frozen encoder (the MIL baseline). */
  frozenEncoder: bool.default(false),
  /** Tiles per validation slide (0 = all tissue tiles). */
  evalTiles: int(0, 65536).default(0),
  /** Validate every this many steps as well as at each epoch's end (0: only at epoch ends); early curves, time to a good AUC. */
  evalEvery: int(0, 100000).default(0),
  /** 'auto' = WebGPU where an adapter exists, else the cpu backend. */
  backend: z.enum(['auto', 'webgpu', 'cpu']).default('auto'),
});

export type Config = z.infer<typeof ConfigSchema>;
export type EncoderConfig = z.infer<typeof EncoderSchema>;
export type OptimizerConfig = z.infer<typeof OptimizerSchema>;
export type GridConfig = z.infer<typeof GridSchema>;

export const DEFAULT_CONFIG: Config = ConfigSchema.parse({});

export class ConfigError extends Error {
  /** Each problem names its field, e.g. "tiles: must be at least 1". */
  constructor(readonly problems: { field: string; message: string }[]) {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
    this.name = 'ConfigError';
  }
}

type Json = { [key: string]: unknown };

/** Parses and validates a (possibly partial, possibly string-valued) config; throws ConfigError. */
export function parseConfig(input: unknown): Config {
  const result = ConfigSchema.safeParse(input ?? {});
  if (result.success) {
    const cfg = result.data;
    if (cfg.optimizer.minLr > cfg.optimizer.lr) {
      throw new ConfigError([{ field: 'optimizer.minLr', message: 'must not exceed optimizer.lr' }]);
    }
    if (cfg.grid.overlap >= cfg.grid.tile) {
      throw new ConfigError([{ field: 'grid.overlap', message: `must be less than grid.tile (${cfg.grid.tile} px)` }]);
    }
    return cfg;
  }
  throw new ConfigError(
    result.error.issues.map((i) => ({ field: i.path.join('.') || '(config)', message: i.message })),
  );
}

function flatten(obj: Json, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [key, value] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) flatten(value as Json, path, out);
    else out[path] = String(value);
  }
  return out;
}

function unflatten(flat: Record<string, string>): Json {
  const out: Json = {};
  for (const [path, value] of Object.entries(flat)) {
    const keys = path.split('.');
    let node = out;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Json;
    node[keys[keys.length - 1]] = value;
  }
  return out;
}

/** Serialises only the fields that differ from the defaults: `#tiles=64&encoder.kind=resnet`. */
export function configToHash(cfg: Config): string {
  const defaults = flatten(DEFAULT_CONFIG as unknown as Json);
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(flatten(cfg as unknown as Json))) {
    if (defaults[key] !== value) params.set(key, value);
  }
  const s = params.toString();
  return s ? `#${s}` : '';
}

/** Parses a URL hash (with or without '#'); unknown keys are reported, not silently dropped. */
export function configFromHash(hash: string): Config {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const known = new Set(Object.keys(flatten(DEFAULT_CONFIG as unknown as Json)));
  const flat: Record<string, string> = {};
  const unknown: { field: string; message: string }[] = [];
  for (const [key, value] of params) {
    if (key === 'preset') continue;
    if (!known.has(key)) unknown.push({ field: key, message: 'unknown setting' });
    else flat[key] = value;
  }
  if (unknown.length) throw new ConfigError(unknown);
  return parseConfig(unflatten(flat));
}

/** Feature size D of an encoder. */
export function featureDim(enc: EncoderConfig): number {
  switch (enc.kind) {
    case 'tiny-cnn':
      return enc.width * 4;
    case 'resnet':
      return enc.width * 8;
    case 'tv-resnet': {
      const expansion = enc.depth === 50 ? 4 : 1;
      return enc.width * (enc.truncate ? 4 : 8) * expansion;
    }
    case 'vit':
      return enc.pool === 'cls+mean' ? 2 * enc.dim : enc.dim;
  }
}

/** The per-channel input mean and std of an encoder, parsed from the config's strings. */
export function inputNorm(enc: EncoderConfig): { mean: number[]; std: number[] } {
  return { mean: enc.mean.split(',').map(Number), std: enc.std.split(',').map(Number) };
}

/** Attention size of the gated-attention aggregator. */
export function attentionDim(size: Config['aggregator']): number {
  return size === 'big' ? 384 : 256;
}

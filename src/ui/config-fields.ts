// The config form's fields, derived from the zod schema itself (src/core/config.ts): every leaf
// with its path, kind (number, boolean, choice) and choices, so the form never drifts from it.
import { ConfigSchema, type Config } from '../core/config.ts';

export interface Field {
  path: string;
  kind: 'number' | 'boolean' | 'choice';
  choices?: string[];
  integer: boolean;
}

type Def = { type: string; innerType?: unknown; in?: unknown; out?: unknown; entries?: Record<string, string>; options?: unknown[]; values?: unknown[]; shape?: Record<string, unknown>; checks?: { _zod: { def: { format?: string; check?: string } } }[] };
const def = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;

function unwrap(s: unknown): unknown {
  for (let i = 0; i < 10; i++) {
    const d = def(s);
    if (d.type === 'default' || d.type === 'prefault' || d.type === 'optional') s = d.innerType;
    else if (d.type === 'pipe') s = def(d.out).type === 'transform' ? d.in : d.out;
    else return s;
  }
  return s;
}

function leaf(path: string, s: unknown): Field {
  const u = unwrap(s);
  const d = def(u);
  if (d.type === 'boolean') return { path, kind: 'boolean', integer: false };
  if (d.type === 'enum') return { path, kind: 'choice', choices: Object.values(d.entries ?? {}), integer: false };
  if (d.type === 'union') return { path, kind: 'choice', choices: (d.options ?? []).map((o) => String(def(o).values?.[0])), integer: false };
  const integer = (d.checks ?? []).some((c) => c._zod.def.format === 'safeint' || c._zod.def.check === 'number_format');
  return { path, kind: 'number', integer };
}

export function configFields(): Field[] {
  const out: Field[] = [];
  const walk = (shape: Record<string, unknown>, prefix: string) => {
    for (const [key, s] of Object.entries(shape)) {
      const path = prefix ? `${prefix}.${key}` : key;
      const u = unwrap(s);
      if (def(u).type === 'object') walk((u as { shape: Record<string, unknown> }).shape, path);
      else out.push(leaf(path, s));
    }
  };
  walk(ConfigSchema.shape as Record<string, unknown>, '');
  return out;
}

export function getPath(obj: unknown, path: string): unknown {
  return path.split('.').reduce((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

export function setPath<T>(obj: T, path: string, value: unknown): T {
  const keys = path.split('.');
  const copy = structuredClone(obj) as Record<string, unknown>;
  let node = copy;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  node[keys[keys.length - 1]] = value;
  return copy as T;
}

/** The Setup form's sections, in display order. */
export const GROUPS = ['Model', 'Data', 'Optimizer', 'Ranks'] as const;
export type Group = (typeof GROUPS)[number];

export type EncoderKind = Config['encoder']['kind'];
export const ENCODER_KINDS: readonly EncoderKind[] = ['tiny-cnn', 'resnet', 'tv-resnet', 'vit'];
const VIT: readonly EncoderKind[] = ['vit'];
const PRETRAINED: readonly EncoderKind[] = ['tv-resnet', 'vit'];

export interface FieldMeta {
  group: Group;
  /** What the form shows; the config key stays visible beside it as a hint. */
  label: string;
  /** The encoder kinds this field means something for (absent: every kind). */
  kinds?: readonly EncoderKind[];
  /** A heading inside the group, from this field on. */
  section?: string;
}

/** Group, human label and relevance of every config leaf (a unit test keeps this complete). */
export const FIELD_META: Record<string, FieldMeta> = {
  'encoder.kind': { group: 'Model', label: 'Encoder', section: 'Architecture' },
  'encoder.width': { group: 'Model', label: 'Base channel width', kinds: ['tiny-cnn', 'resnet', 'tv-resnet'] },
  'encoder.depth': { group: 'Model', label: 'ResNet depth', kinds: ['resnet', 'tv-resnet'] },
  'encoder.norm': { group: 'Model', label: 'Normalisation layers', kinds: ['resnet'] },
  'encoder.truncate': { group: 'Model', label: 'Stop after layer3', kinds: ['tv-resnet'] },
  'encoder.patch': { group: 'Model', label: 'Patch size', kinds: VIT },
  'encoder.dim': { group: 'Model', label: 'Embedding size', kinds: VIT },
  'encoder.blocks': { group: 'Model', label: 'Transformer blocks', kinds: VIT },
  'encoder.heads': { group: 'Model', label: 'Attention heads', kinds: VIT },
  'encoder.mlpHidden': { group: 'Model', label: 'MLP hidden width', kinds: VIT },
  'encoder.mlp': { group: 'Model', label: 'MLP activation', kinds: VIT },
  'encoder.layerScale': { group: 'Model', label: 'LayerScale', kinds: VIT },
  'encoder.classToken': { group: 'Model', label: 'Class token', kinds: VIT },
  'encoder.regTokens': { group: 'Model', label: 'Register tokens', kinds: VIT },
  'encoder.noEmbedClass': { group: 'Model', label: 'Position embeddings on patches only', kinds: VIT },
  'encoder.posGrid': { group: 'Model', label: 'Position-embedding grid', kinds: VIT },
  'encoder.pool': { group: 'Model', label: 'Output pooling', kinds: VIT },
  'encoder.fcNorm': { group: 'Model', label: 'LayerNorm after pooling', kinds: VIT },
  'encoder.lnEps': { group: 'Model', label: 'LayerNorm epsilon', kinds: VIT },
  'encoder.qkvBias': { group: 'Model', label: 'Bias on q, k, v', kinds: VIT },
  'encoder.mean': { group: 'Model', label: 'Input mean (R,G,B)', section: 'Input normalisation' },
  'encoder.std': { group: 'Model', label: 'Input std (R,G,B)' },
  'encoder.pretrained': { group: 'Model', label: 'Pretrained weight file', kinds: PRETRAINED, section: 'Fine-tuning' },
  'encoder.freezeBlocks': { group: 'Model', label: 'Frozen blocks', kinds: PRETRAINED },
  'encoder.freezeStem': { group: 'Model', label: 'Freeze the stem', kinds: PRETRAINED },
  'encoder.layerDecay': { group: 'Model', label: 'Layer-wise learning-rate decay', kinds: PRETRAINED },
  aggregator: { group: 'Model', label: 'Aggregator size', section: 'Aggregator' },
  dropout: { group: 'Model', label: 'Aggregator dropout' },
  frozenEncoder: { group: 'Model', label: 'Frozen encoder (train the aggregator only)' },
  featureNorm: { group: 'Model', label: 'Feature norm before the aggregator' },

  tileSize: { group: 'Data', label: 'Model input size (px)' },
  'grid.mpp': { group: 'Data', label: 'Grid µm per pixel', section: 'Tile grid' },
  'grid.tile': { group: 'Data', label: 'Grid tile (px at grid µm/px)' },
  'grid.overlap': { group: 'Data', label: 'Tile overlap (px)' },
  'grid.minTissue': { group: 'Data', label: 'Minimum tissue fraction' },
  'grid.tissueThreshold': { group: 'Data', label: 'Tissue gray threshold' },
  tiles: { group: 'Data', label: 'Tiles per slide per step (K)', section: 'Sampling' },
  evalTiles: { group: 'Data', label: 'Tiles per validation slide' },
  evalEvery: { group: 'Data', label: 'Validate every N steps' },
  'augment.flip': { group: 'Data', label: 'Random flips' },
  'augment.rot90': { group: 'Data', label: 'Random 90° rotations' },
  'augment.blur': { group: 'Data', label: 'Blur probability' },

  'optimizer.lr': { group: 'Optimizer', label: 'Learning rate' },
  'optimizer.minLr': { group: 'Optimizer', label: 'Minimum learning rate' },
  'optimizer.warmupEpochs': { group: 'Optimizer', label: 'Warm-up epochs' },
  'optimizer.weightDecay': { group: 'Optimizer', label: 'Weight decay at the start' },
  'optimizer.weightDecayEnd': { group: 'Optimizer', label: 'Weight decay at the end' },
  'optimizer.beta1': { group: 'Optimizer', label: 'Adam β1' },
  'optimizer.beta2': { group: 'Optimizer', label: 'Adam β2' },
  'optimizer.eps': { group: 'Optimizer', label: 'Adam ε' },
  'optimizer.encoderLrScale': { group: 'Optimizer', label: 'Encoder learning-rate scale' },
  'optimizer.accumulateSlides': { group: 'Optimizer', label: 'Slides per update' },
  epochs: { group: 'Optimizer', label: 'Epochs' },
  positiveWeight: { group: 'Optimizer', label: 'Positive-class loss weight' },
  seed: { group: 'Optimizer', label: 'Random seed' },

  ranks: { group: 'Ranks', label: 'Ranks (N)' },
  microBatch: { group: 'Ranks', label: 'Micro-batch' },
  backend: { group: 'Ranks', label: 'Rank backend' },
};

/** The field's label (its key when a new schema field has no entry yet). */
export const labelOf = (path: string): string => FIELD_META[path]?.label ?? path;

/** Whether a field means something for the given encoder kind (fields of no group always show). */
export function relevantFor(path: string, kind: string): boolean {
  const kinds = FIELD_META[path]?.kinds;
  return !kinds || kinds.includes(kind as EncoderKind);
}

/** The fields by group, in GROUPS order and FIELD_META order within a group; fields without an entry go last in Model. */
export function groupFields(fields: readonly Field[]): { group: Group; fields: Field[] }[] {
  const order = Object.keys(FIELD_META);
  const rank = (f: Field) => (order.includes(f.path) ? order.indexOf(f.path) : order.length);
  return GROUPS.map((group) => ({
    group,
    fields: fields.filter((f) => (FIELD_META[f.path]?.group ?? 'Model') === group).sort((a, b) => rank(a) - rank(b)),
  }));
}

/** The form's text for every field of a config. */
export function draftOf(fields: readonly Field[], config: Config): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [f.path, String(getPath(config, f.path))]));
}

/** The raw config the form submits: every field, shown or hidden (parse it with parseConfig). */
export function rawFromDraft(fields: readonly Field[], draft: Record<string, string>): Record<string, unknown> {
  let raw: Record<string, unknown> = {};
  for (const f of fields) if (draft[f.path] !== undefined) raw = setPath(raw, f.path, draft[f.path]);
  return raw;
}

/** One line of help per field (the schema's comments, shortened). */
export const HELP: Record<string, string> = {
  seed: 'Seeds sampling, initialisation, augmentation and dropout.',
  'encoder.kind': 'tiny-cnn for CPU demos and tests; resnet (GroupNorm) from scratch; tv-resnet and vit for pretrained weights.',
  'encoder.width': 'Base channel width (64 in torchvision ResNets; feature size 4x for tiny-cnn, 8x for resnet).',
  'encoder.depth': 'ResNet depth (18, 34; 50 with bottlenecks for tv-resnet).',
  'encoder.norm': 'resnet: GroupNorm, or BatchNorm frozen in inference mode (never batch statistics).',
  'encoder.truncate': 'tv-resnet: stop after layer3 (ResNet-50 trunc: 1024 features at width 64).',
  'encoder.patch': 'ViT patch size (8, 14 or 16); the tile size must be a multiple of it.',
  'encoder.dim': 'ViT embedding size (Ti 192, S 384, B 768, L 1024).',
  'encoder.blocks': 'ViT transformer blocks.',
  'encoder.heads': 'ViT attention heads (weights cannot tell: dim / 64 in most models).',
  'encoder.mlpHidden': 'ViT MLP hidden width (4 x dim in most models).',
  'encoder.mlp': 'Exact GELU, or packed SwiGLU (SiLU on one half of fc1, times the other).',
  'encoder.layerScale': 'LayerScale gammas on both residual branches.',
  'encoder.classToken': 'A class token before the patch tokens.',
  'encoder.regTokens': 'Register tokens after the class token.',
  'encoder.noEmbedClass': 'Position embeddings cover only the patch tokens (timm’s no_embed_class).',
  'encoder.posGrid': 'Grid side the position embeddings were made for (0: tile size / patch); resized bicubically.',
  'encoder.pool': 'ViT output: class token, mean of patch tokens, or both (Virchow).',
  'encoder.fcNorm': 'LayerNorm after pooling (timm’s fc_norm) instead of on every token before it.',
  'encoder.lnEps': 'LayerNorm epsilon (timm and torchvision 1e-6, Hugging Face 1e-12).',
  'encoder.qkvBias': 'Bias on the query, key and value projections.',
  'encoder.mean': 'Input mean per channel (R,G,B), e.g. ImageNet 0.485,0.456,0.406.',
  'encoder.std': 'Input std per channel (R,G,B).',
  'encoder.pretrained': 'The pretrained weight file this run starts from (set by Load pretrained encoder…).',
  'encoder.freezeBlocks': 'Freeze the stem / patch embedding and the first N blocks.',
  'encoder.freezeStem': 'Freeze the stem / patch embedding, tokens and position embeddings.',
  'encoder.layerDecay': 'Layer-wise learning-rate decay per block (1 = off; 0.65 ViT-B, 0.75 ViT-L).',
  aggregator: 'Gated-attention MIL: small (D=256) or big (D=384).',
  tiles: 'K: tiles per slide per step, split across the ranks.',
  ranks: 'N: encoder replicas, one Web Worker each with its own WebGPU device.',
  microBatch: 'Fixed micro-batch for encode and recompute: memory grows with it, not with K.',
  tileSize: 'Tile side in pixels fed to the encoder (grid tiles are resized to it).',
  'grid.mpp': 'µm per pixel at which tiles are cut from the slides (0.25 ≈ 40x, 0.5 ≈ 20x, 1 ≈ 10x).',
  'grid.tile': 'Tile side in pixels at the grid’s µm per pixel (field of view = tile x µm/px).',
  'grid.overlap': 'Overlap of neighbouring tiles, pixels at the grid’s µm per pixel (stride = tile - overlap).',
  'grid.minTissue': 'Keep tiles with at least this fraction of tissue (0.25 by default).',
  'grid.tissueThreshold': 'Gray level above which a pixel is background (0 = Otsu’s, clamped to 170..235).',
  epochs: 'Passes over the training slides; validation after each.',
  frozenEncoder: 'Train only the aggregator on frozen encoder features (classic MIL).',
  evalTiles: 'Tiles per validation slide (0 = all tissue tiles).',
  evalEvery: 'Validate every N steps as well as at each epoch’s end (0: only at epoch ends).',
  featureNorm: 'Normalise features before the aggregator: none, layer (zero mean, unit variance over D) or l2 (unit length x sqrt(D)).',
  'optimizer.accumulateSlides': 'Average the gradients of this many consecutive slides, then update once (1: after every slide).',
  backend: 'auto = WebGPU where an adapter exists, else the cpu backend.',
  positiveWeight: 'Loss weight of the positive class (0.7 in the paper); the negative class gets 1 - w.',
  dropout: 'Dropout after the aggregator’s hidden layers.',
  'augment.flip': 'Random horizontal and vertical flips per tile.',
  'augment.rot90': 'Random rotations by multiples of 90° per tile.',
  'augment.blur': 'Probability of a 3x3 Gaussian blur per tile.',
  'optimizer.lr': 'AdamW peak learning rate, after warm-up.',
  'optimizer.minLr': 'Floor of the cosine decay (at most the learning rate).',
  'optimizer.warmupEpochs': 'Linear warm-up from 0 over this many epochs.',
  'optimizer.weightDecay': 'Weight decay at the start; a cosine takes it to the end value (0.04 in the paper).',
  'optimizer.weightDecayEnd': 'Weight decay at the end of the cosine (0.4 in the paper).',
  'optimizer.beta1': 'AdamW first-moment decay.',
  'optimizer.beta2': 'AdamW second-moment decay.',
  'optimizer.eps': 'AdamW epsilon in the denominator.',
  'optimizer.encoderLrScale': 'Multiplier on the encoder’s learning rate (fine-tuning usually wants it below 1).',
};

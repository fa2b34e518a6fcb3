// The config form's fields, derived from the zod schema itself (src/core/config.ts): every leaf
// with its path, kind (number, boolean, choice) and choices, so the form never drifts from it.
import { ConfigSchema } from '../core/config.ts';

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
  'encoder.mlpHidden': 'ViT MLP hidden width.',
  'encoder.pool': 'ViT output: class token, mean of patch tokens, or both (Virchow).',
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
  tileSize: 'Tile side in pixels fed to the encoder (tiles are read at 0.5 µm/px and resized).',
  epochs: 'Passes over the training slides; validation after each.',
  frozenEncoder: 'Train only the aggregator on frozen encoder features (classic MIL).',
  evalTiles: 'Tiles per validation slide (0 = all tissue tiles).',
  backend: 'auto = WebGPU where an adapter exists, else the cpu backend.',
  positiveWeight: 'Loss weight of the positive class.',
  dropout: 'Dropout after the aggregator’s hidden layers.',
};

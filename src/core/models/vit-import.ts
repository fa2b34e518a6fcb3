// Name maps between ViT checkpoints and the lab's ViT (vit.ts): timm VisionTransformer, Hugging
// Face ViTModel and torchvision VisionTransformer. Detection reads only names and shapes; import
// reads one tensor at a time; export is import's exact inverse. Pure data: no tfjs.
import type { EncoderConfig } from '../config.ts';
import type { ParamSpec } from '../params.ts';
import {
  WeightMismatchError,
  hwioToOihw,
  oihwToHwio,
  sameShape,
  transpose2d,
  type EncoderImport,
  type ExportTensor,
  type ImportReport,
  type SourceTensors,
} from './import-types.ts';
import { resizePosEmbed } from './pos-embed.ts';
import { vitGrid, vitPrefixTokens, vitSpecs } from './vit.ts';

export type VitFamily = 'timm-vit' | 'hf-vit' | 'tv-vit';

export interface VitDetection {
  family: VitFamily;
  options: Partial<EncoderConfig>;
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Family names

/** Two names that identify a family (relative to the file's prefix): the patch conv and block 0's attention. */
const SIGNATURE: Record<VitFamily, [string, string]> = {
  'timm-vit': ['patch_embed.proj.weight', 'blocks.0.attn.qkv.weight'],
  'hf-vit': ['embeddings.patch_embeddings.projection.weight', 'encoder.layer.0.attention.attention.query.weight'],
  'tv-vit': ['conv_proj.weight', 'encoder.layers.encoder_layer_0.self_attention.in_proj_weight'],
};

/** Every name the family's map knows (relative to the prefix), used or not by a given model. */
const KNOWN: Record<VitFamily, RegExp> = {
  'timm-vit':
    /^(cls_token|reg_token|pos_embed|patch_embed\.proj\.(weight|bias)|(norm|fc_norm)\.(weight|bias)|blocks\.\d+\.((norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)|ls[12]\.gamma))$/,
  'hf-vit':
    /^(embeddings\.(cls_token|position_embeddings|patch_embeddings\.projection\.(weight|bias))|layernorm\.(weight|bias)|encoder\.layer\.\d+\.(layernorm_before|layernorm_after|attention\.attention\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)\.(weight|bias))$/,
  'tv-vit':
    /^(class_token|conv_proj\.(weight|bias)|encoder\.pos_embedding|encoder\.ln\.(weight|bias)|encoder\.layers\.encoder_layer_\d+\.(ln_1\.(weight|bias)|ln_2\.(weight|bias)|self_attention\.(in_proj_weight|in_proj_bias)|self_attention\.out_proj\.(weight|bias)|mlp\.(0|3|linear_1|linear_2)\.(weight|bias)))$/,
};

/** Names a feature extractor never uses: classification heads, poolers, masked-modelling tokens. */
const HEADS: Record<VitFamily, RegExp> = {
  'timm-vit': /^(head|head_dist)\.|^mask_token$/,
  'hf-vit': /^(pooler|classifier)\.|^embeddings\.mask_token$/,
  'tv-vit': /^heads\./,
};

/** The file's prefix for a family ('' or e.g. 'vit.' for ViTForImageClassification), or null. */
function familyPrefix(tensors: SourceTensors, family: VitFamily): string | null {
  const [a, b] = SIGNATURE[family];
  let best: string | null = null;
  for (const name of tensors.keys()) {
    if (!name.endsWith(a)) continue;
    const prefix = name.slice(0, name.length - a.length);
    if (prefix && !prefix.endsWith('.')) continue;
    if (tensors.has(prefix + b) && (best === null || prefix.length < best.length)) best = prefix;
  }
  return best;
}

/**
 * The family's source names for one of the lab's parameters (timm's name without `enc.`): one
 * entry per source tensor, each a list of accepted spellings (the first is the one written).
 * Null where the family has no such parameter.
 */
function sourceNames(family: VitFamily, timm: string): string[][] | null {
  if (family === 'timm-vit') return [[timm]];
  const block = /^blocks\.(\d+)\.(.+)\.(weight|bias|gamma)$/.exec(timm);
  if (family === 'hf-vit') {
    const top: Record<string, string> = {
      'patch_embed.proj.weight': 'embeddings.patch_embeddings.projection.weight',
      'patch_embed.proj.bias': 'embeddings.patch_embeddings.projection.bias',
      cls_token: 'embeddings.cls_token',
      pos_embed: 'embeddings.position_embeddings',
      'norm.weight': 'layernorm.weight',
      'norm.bias': 'layernorm.bias',
    };
    if (top[timm]) return [[top[timm]]];
    if (!block) return null;
    const [, i, part, kind] = block;
    const layer = `encoder.layer.${i}`;
    if (part === 'attn.qkv') return ['query', 'key', 'value'].map((q) => [`${layer}.attention.attention.${q}.${kind}`]);
    const parts: Record<string, string> = {
      norm1: 'layernorm_before',
      'attn.proj': 'attention.output.dense',
      norm2: 'layernorm_after',
      'mlp.fc1': 'intermediate.dense',
      'mlp.fc2': 'output.dense',
    };
    return parts[part] ? [[`${layer}.${parts[part]}.${kind}`]] : null;
  }
  const top: Record<string, string> = {
    'patch_embed.proj.weight': 'conv_proj.weight',
    'patch_embed.proj.bias': 'conv_proj.bias',
    cls_token: 'class_token',
    pos_embed: 'encoder.pos_embedding',
    'norm.weight': 'encoder.ln.weight',
    'norm.bias': 'encoder.ln.bias',
  };
  if (top[timm]) return [[top[timm]]];
  if (!block) return null;
  const [, i, part, kind] = block;
  const layer = `encoder.layers.encoder_layer_${i}`;
  if (part === 'attn.qkv') return [[`${layer}.self_attention.in_proj_${kind}`]]; // rows already q, k, v
  // torchvision >= 0.13 (MLPBlock is a torchvision.ops.MLP Sequential): mlp.0 and mlp.3; older: linear_1, linear_2.
  const parts: Record<string, string[]> = {
    norm1: ['ln_1'],
    'attn.proj': ['self_attention.out_proj'],
    norm2: ['ln_2'],
    'mlp.fc1': ['mlp.0', 'mlp.linear_1'],
    'mlp.fc2': ['mlp.3', 'mlp.linear_2'],
  };
  return parts[part] ? [parts[part].map((n) => `${layer}.${n}.${kind}`)] : null;
}

// ---------------------------------------------------------------------------------------------
// Entries: one per lab parameter, with its sources' PyTorch shapes and the layout conversions

interface Entry {
  spec: ParamSpec;
  /** Per source tensor: accepted names (unprefixed; the first is canonical). */
  sources: string[][];
  /** Per source tensor: the PyTorch shape (pos_embed: the shape at the lab's grid). */
  shapes: number[][];
  toLab(src: Float32Array[]): Float32Array;
  toSource(value: Float32Array): Float32Array[];
}

function entry(family: VitFamily, spec: ParamSpec): Entry | null {
  const timm = spec.name.slice('enc.'.length);
  const sources = sourceNames(family, timm);
  if (!sources) return null;
  const s = spec.shape;
  const copy = { toLab: (src: Float32Array[]) => src[0], toSource: (v: Float32Array) => [v] };
  if (timm === 'patch_embed.proj.weight') {
    const [P, , C, D] = s; // [P, P, 3, D] <- [D, 3, P, P]
    const oihw = [D, C, P, P];
    return { spec, sources, shapes: [oihw], toLab: (src) => oihwToHwio(src[0], oihw), toSource: (v) => [hwioToOihw(v, s)] };
  }
  if (s.length === 2) {
    // Linear [in, out] <- PyTorch [out, in].
    const [inp, out] = s;
    if (sources.length === 3) {
      // Hugging Face's separate query, key, value [D, D] each: stacked rows q, k, v = timm's qkv rows.
      const d = out / 3;
      return {
        spec,
        sources,
        shapes: [[d, inp], [d, inp], [d, inp]],
        toLab: (src) => {
          const rows = new Float32Array(out * inp);
          src.forEach((part, j) => rows.set(part, j * d * inp));
          return transpose2d(rows, out, inp);
        },
        toSource: (v) => {
          const rows = transpose2d(v, inp, out);
          return [0, 1, 2].map((j) => rows.slice(j * d * inp, (j + 1) * d * inp));
        },
      };
    }
    return { spec, sources, shapes: [[out, inp]], toLab: (src) => transpose2d(src[0], out, inp), toSource: (v) => [transpose2d(v, inp, out)] };
  }
  if (sources.length === 3) {
    // Hugging Face query, key, value biases [D] each -> qkv bias [3D].
    const d = s[0] / 3;
    return {
      spec,
      sources,
      shapes: [[d], [d], [d]],
      toLab: (src) => {
        const all = new Float32Array(3 * d);
        src.forEach((part, j) => all.set(part, j * d));
        return all;
      },
      toSource: (v) => [0, 1, 2].map((j) => v.slice(j * d, (j + 1) * d)),
    };
  }
  return { spec, sources, shapes: [s], ...copy };
}

/** Perfect-square root, or -1. */
function squareRoot(n: number): number {
  const r = Math.round(Math.sqrt(n));
  return n > 0 && r * r === n ? r : -1;
}

// ---------------------------------------------------------------------------------------------
// Detection

/** Infers the family and the encoder options of a ViT checkpoint from names and shapes only; null if it is no known ViT. */
export function detectVit(tensors: SourceTensors): VitDetection | null {
  const families: VitFamily[] = ['timm-vit', 'hf-vit', 'tv-vit'];
  for (const family of families) {
    const prefix = familyPrefix(tensors, family);
    if (prefix === null) continue;
    const shape = (name: string) => tensors.get(prefix + name)?.shape;
    const has = (name: string) => tensors.has(prefix + name);
    const notes: string[] = [];
    if (prefix) notes.push(`names under '${prefix}'`);
    const names = {
      'timm-vit': { block: /^blocks\.(\d+)\./, fc1: 'blocks.0.mlp.fc1.weight', fc2: 'blocks.0.mlp.fc2.weight', pos: 'pos_embed', cls: 'cls_token' },
      'hf-vit': {
        block: /^encoder\.layer\.(\d+)\./,
        fc1: 'encoder.layer.0.intermediate.dense.weight',
        fc2: 'encoder.layer.0.output.dense.weight',
        pos: 'embeddings.position_embeddings',
        cls: 'embeddings.cls_token',
      },
      'tv-vit': {
        block: /^encoder\.layers\.encoder_layer_(\d+)\./,
        fc1: has('encoder.layers.encoder_layer_0.mlp.0.weight') ? 'encoder.layers.encoder_layer_0.mlp.0.weight' : 'encoder.layers.encoder_layer_0.mlp.linear_1.weight',
        fc2: has('encoder.layers.encoder_layer_0.mlp.3.weight') ? 'encoder.layers.encoder_layer_0.mlp.3.weight' : 'encoder.layers.encoder_layer_0.mlp.linear_2.weight',
        pos: 'encoder.pos_embedding',
        cls: 'class_token',
      },
    }[family];

    const conv = shape(SIGNATURE[family][0])!;
    if (conv.length !== 4 || conv[1] !== 3 || conv[2] !== conv[3]) {
      notes.push(`the patch convolution has shape [${conv}], not [D, 3, P, P]`);
      return { family, options: { kind: 'vit' }, notes };
    }
    const [dim, , patch] = conv;
    let blocks = 0;
    for (const name of tensors.keys()) {
      if (!name.startsWith(prefix)) continue;
      const m = names.block.exec(name.slice(prefix.length));
      if (m) blocks = Math.max(blocks, Number(m[1]) + 1);
    }
    const options: Partial<EncoderConfig> = { kind: 'vit', patch, dim, blocks };

    const fc1 = shape(names.fc1);
    const fc2 = shape(names.fc2);
    if (fc1 && fc2) {
      const swiglu = fc1[0] === 2 * fc2[1];
      options.mlp = swiglu ? 'swiglu' : 'gelu';
      options.mlpHidden = fc2[1];
      if (swiglu) notes.push(`fc1 outputs ${fc1[0]} = 2 x fc2's ${fc2[1]} inputs: packed SwiGLU`);
    } else {
      notes.push('no MLP weights in block 0');
    }

    options.classToken = has(names.cls);
    options.regTokens = family === 'timm-vit' ? (shape('reg_token')?.[1] ?? 0) : 0;
    options.layerScale = family === 'timm-vit' && has('blocks.0.ls1.gamma');
    options.qkvBias =
      family === 'timm-vit' ? has('blocks.0.attn.qkv.bias') : family === 'hf-vit' ? has('encoder.layer.0.attention.attention.query.bias') : true;
    options.lnEps = family === 'hf-vit' ? 1e-12 : 1e-6;
    options.fcNorm = family === 'timm-vit' && has('fc_norm.weight');
    options.pool = options.fcNorm || !options.classToken ? 'mean' : 'cls';
    if (options.fcNorm) notes.push("fc_norm present: average pooling of the patch tokens, then fc_norm (timm's global_pool='avg')");

    const pos = shape(names.pos);
    const prefixTokens = vitPrefixTokens({ classToken: options.classToken, regTokens: options.regTokens });
    if (pos && pos.length === 3 && pos[2] === dim) {
      const L = pos[1];
      const withPrefix = squareRoot(L - prefixTokens);
      const patchesOnly = squareRoot(L);
      if (withPrefix > 0) {
        options.noEmbedClass = false;
        options.posGrid = withPrefix;
        if (prefixTokens > 0 && patchesOnly > 0) notes.push(`pos_embed length ${L} fits both ${withPrefix}² + ${prefixTokens} and ${patchesOnly}²; assumed the former`);
      } else if (patchesOnly > 0) {
        options.noEmbedClass = true;
        options.posGrid = patchesOnly;
        notes.push(`pos_embed covers the ${L} patch tokens only (no_embed_class)`);
      } else {
        notes.push(`pos_embed length ${L} is no square grid (plus ${prefixTokens} prefix tokens)`);
      }
      if (options.posGrid) notes.push(`position embeddings for a ${options.posGrid}x${options.posGrid} grid (${options.posGrid * patch}px tiles)`);
    } else {
      notes.push(`position embeddings ${pos ? `of shape [${pos}]` : 'missing'}`);
    }

    if (dim % 64 === 0) {
      options.heads = dim / 64;
      notes.push(`attention heads cannot be read from shapes: assumed dim / 64 = ${options.heads}`);
    } else {
      notes.push(`attention heads cannot be read from shapes and dim ${dim} is no multiple of 64: set heads by hand`);
    }
    if (family === 'hf-vit') notes.push('Hugging Face ViTModel: LayerNorm eps 1e-12, exact GELU assumed (config.json hidden_act "gelu")');
    return { family, options, notes };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Import and export

/** Maps a checkpoint onto `vitSpecs(enc, tileSize)`; throws WeightMismatchError on missing, mis-shaped or unknown tensors. */
export async function importVit(tensors: SourceTensors, family: VitFamily, enc: EncoderConfig, tileSize: number): Promise<EncoderImport> {
  const specs = vitSpecs(enc, tileSize);
  const grid = vitGrid(enc, tileSize);
  const prefix = familyPrefix(tensors, family) ?? '';
  const report: ImportReport = { family, missing: [], unexpected: [], unused: [], misshaped: [], notes: [] };
  const posPrefixRows = enc.noEmbedClass ? 0 : vitPrefixTokens(enc);
  let posFrom = grid; // the checkpoint's grid side

  // 1. Names and shapes only: what each parameter reads.
  const plan: { entry: Entry; names: string[] }[] = [];
  const used = new Set<string>();
  for (const spec of specs) {
    const e = entry(family, spec);
    if (!e) {
      report.missing.push(`${spec.name} (a ${family} checkpoint has no such parameter)`);
      continue;
    }
    const names: string[] = [];
    e.sources.forEach((spellings, j) => {
      const name = spellings.map((n) => prefix + n).find((n) => tensors.has(n));
      if (!name) {
        report.missing.push(prefix + spellings[0]);
        return;
      }
      used.add(name);
      names.push(name);
      const found = tensors.get(name)!.shape;
      if (spec.name === 'enc.pos_embed') {
        const side = found.length === 3 && found[0] === 1 && found[2] === enc.dim ? squareRoot(found[1] - posPrefixRows) : -1;
        if (side < 0) report.misshaped.push({ name, expected: e.shapes[j], found });
        else posFrom = side;
      } else if (!sameShape(found, e.shapes[j])) {
        report.misshaped.push({ name, expected: e.shapes[j], found });
      }
    });
    plan.push({ entry: e, names });
  }
  for (const name of tensors.keys()) {
    if (used.has(name)) continue;
    const rel = name.startsWith(prefix) ? name.slice(prefix.length) : null;
    if (rel !== null && KNOWN[family].test(rel)) report.unused.push(name);
    else if (HEADS[family].test(rel ?? name) || HEADS[family].test(name)) report.unused.push(name);
    else report.unexpected.push(name);
  }
  // Unknown tensors mean a model this encoder does not compute (q/k norms, a distillation token,
  // attention pooling ...): refuse them like missing ones rather than give silently wrong features.
  if (report.missing.length || report.misshaped.length || report.unexpected.length) throw new WeightMismatchError(report);

  // 2. Read one tensor at a time, convert.
  const values = new Map<string, Float32Array>();
  for (const { entry: e, names } of plan) {
    const src: Float32Array[] = [];
    for (const name of names) src.push(await tensors.get(name)!.read());
    let value = e.toLab(src);
    if (e.spec.name === 'enc.pos_embed' && posFrom !== grid) {
      const d = enc.dim;
      const resized = new Float32Array(e.spec.shape.reduce((a, b) => a * b, 1));
      resized.set(value.subarray(0, posPrefixRows * d)); // prefix-token rows as they are
      resized.set(resizePosEmbed(value.subarray(posPrefixRows * d), posFrom, grid, d), posPrefixRows * d);
      value = resized;
      report.notes.push(
        `position embeddings resized from ${posFrom}x${posFrom} to ${grid}x${grid} (bicubic, antialiased, as timm's resample_abs_pos_embed)` +
          (posPrefixRows ? `; the ${posPrefixRows} prefix-token row${posPrefixRows > 1 ? 's' : ''} kept` : ''),
      );
    }
    values.set(e.spec.name, value);
  }
  if (enc.posGrid && enc.posGrid !== posFrom) report.notes.push(`the checkpoint's grid is ${posFrom}x${posFrom}, not posGrid ${enc.posGrid}`);
  if (report.unused.length) report.notes.push(`${report.unused.length} tensor${report.unused.length > 1 ? 's' : ''} not used (head, pooler or parts this configuration leaves out)`);
  return { values, report };
}

/** The lab's values back in the family's names and PyTorch layouts (pos_embed at its current grid); importVit's inverse. */
export function exportVit(values: Map<string, Float32Array>, family: VitFamily, enc: EncoderConfig, tileSize: number): ExportTensor[] {
  const out: ExportTensor[] = [];
  for (const spec of vitSpecs(enc, tileSize)) {
    const e = entry(family, spec);
    if (!e) throw new Error(`${spec.name} has no ${family} name (the family has no such parameter)`);
    const value = values.get(spec.name);
    if (!value) throw new Error(`exportVit: no value for ${spec.name}`);
    e.toSource(value).forEach((data, j) => out.push({ name: e.sources[j][0], shape: e.shapes[j], data }));
  }
  return out;
}

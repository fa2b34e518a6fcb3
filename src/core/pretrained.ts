// Pretrained encoders: a weight file (safetensors or a torch.save zip) -> which architecture it
// holds, the lab's config for it, and its weights packed in spec order [P] ready for the ranks.
// Nothing here touches the DOM or a transport: the lab's Setup panel, the Node trainer and the
// tests all call it. Files are read tensor by tensor (Blob.slice), never whole.
import { featureDim, type Config, type EncoderConfig } from './config.ts';
import { encoderSpecs } from './models/encoder.ts';
import type { ExportTensor, ImportReport, SourceTensors } from './models/import-types.ts';
import { detectTvResnet, exportTvResnet, importTvResnet } from './models/tv-resnet-import.ts';
import { detectVit, exportVit, importVit } from './models/vit-import.ts';
import { countParams, unpack } from './params.ts';
import { openWeightFile } from './weights/index.ts';
import { estimateEncoderMemory, type MemoryEstimate } from './memory-estimate.ts';

export type EncoderFamily = 'timm-vit' | 'hf-vit' | 'tv-vit' | 'tv-resnet';

/** Input statistics of the common pathology encoders (FOUNDATION-MODELS facts), by name. */
export const INPUT_NORMS: Record<string, { mean: string; std: string; label: string }> = {
  imagenet: { mean: '0.485,0.456,0.406', std: '0.229,0.224,0.225', label: 'ImageNet (UNI, GigaPath, Phikon, CONCH-style, torchvision)' },
  half: { mean: '0.5,0.5,0.5', std: '0.5,0.5,0.5', label: 'mean 0.5 / std 0.5 (kaiko)' },
  lunit: { mean: '0.70322989,0.53606487,0.66096631', std: '0.21716536,0.26081574,0.20723464', label: 'Lunit DINO' },
};

export interface Detection {
  family: EncoderFamily;
  /** The architecture fields the file determines (merged over the current encoder config). */
  options: Partial<EncoderConfig>;
  notes: string[];
}

export interface PretrainedEncoder {
  file: string;
  family: EncoderFamily;
  /** The full encoder config the weights were mapped to. */
  encoder: EncoderConfig;
  tileSize: number;
  /** [P] weights in the lab's layout, packed in encoderSpecs(encoder, tileSize) order. */
  weights: Float32Array;
  params: number;
  featureDim: number;
  report: ImportReport;
  memory: MemoryEstimate;
}

/** Which family and architecture a file's tensor names and shapes describe; throws when none. */
export function detectEncoder(tensors: SourceTensors, file: string): Detection {
  const vit = detectVit(tensors);
  if (vit) return vit as Detection;
  const resnet = detectTvResnet(tensors);
  if (resnet) return resnet as Detection;
  const names = [...tensors.keys()].slice(0, 4).join(', ');
  throw new Error(`${file}: unsupported architecture: no ViT (timm, Hugging Face, torchvision) or torchvision ResNet names found (first keys: ${names || 'none'})`);
}

/**
 * The encoder config for a detection: the file's architecture over the user's other settings.
 * Shapes cannot tell a ViT's head count (the detection guesses dim / 64), so when the user's
 * config is already a ViT of the same width (a link, or heads set before loading) its heads and
 * a 'cls+mean' pooling are kept; likewise a tv-resnet config's truncation after layer3.
 */
export function encoderConfigFor(d: Detection, base: EncoderConfig, file: string): EncoderConfig {
  const kind = d.family === 'tv-resnet' ? 'tv-resnet' : 'vit';
  const out: EncoderConfig = { ...base, ...d.options, kind, pretrained: file };
  if (kind === 'vit' && base.kind === 'vit' && base.dim === out.dim) {
    out.heads = base.heads;
    if (base.pool === 'cls+mean' && !out.fcNorm) out.pool = base.pool;
  }
  // Truncation is the user's choice where the file has layer4 (then listed as unused).
  if (kind === 'tv-resnet' && base.kind === 'tv-resnet' && base.truncate) out.truncate = true;
  if (kind === 'vit' && out.dim % out.heads !== 0) throw new Error(`${file}: ${out.heads} attention heads do not divide the embedding size ${out.dim}; set encoder.heads`);
  return out;
}

/**
 * Opens a weight file, detects its architecture, maps its tensors onto the lab's encoder and
 * packs them. `cfg.tileSize` is the model input (a ViT's position embeddings are resized to it).
 * Throws an Error naming the file and the reason for any bad input; nothing else changes.
 */
export async function loadPretrained(blob: Blob, file: string, cfg: Config, signal?: AbortSignal): Promise<PretrainedEncoder> {
  const wf = await openWeightFile(blob, file);
  signal?.throwIfAborted();
  const tensors: SourceTensors = wf.tensors;
  const detection = detectEncoder(tensors, file);
  const encoder = encoderConfigFor(detection, cfg.encoder, file);
  const tileSize = cfg.tileSize;
  const specs = encoderSpecs(encoder, tileSize); // throws on a tile size the patch grid cannot take
  const imported =
    detection.family === 'tv-resnet'
      ? await importTvResnet(tensors, encoder)
      : await importVit(tensors, detection.family, encoder, tileSize);
  signal?.throwIfAborted();
  const params = countParams(specs);
  const weights = new Float32Array(params);
  const views = unpack(specs, weights);
  for (const s of specs) {
    const v = imported.values.get(s.name);
    if (!v) throw new Error(`${file}: the ${detection.family} name map gave no value for ${s.name}`);
    views.get(s.name)!.set(v);
  }
  const guessed = detection.options.heads;
  const detectionNotes = detection.notes.map((n) => (guessed !== undefined && encoder.heads !== guessed && /heads/.test(n) ? `attention heads: ${encoder.heads}, from the settings (shapes cannot tell)` : n));
  const report = { ...imported.report, notes: [...wf.notes, ...detectionNotes, ...imported.report.notes] };
  return { file, family: detection.family, encoder, tileSize, weights, params, featureDim: featureDim(encoder), report, memory: estimateEncoderMemory(encoder, tileSize, cfg.microBatch) };
}

/** The encoder's weights [P] written back in the family's own names and PyTorch layouts. */
export function exportPretrained(family: EncoderFamily, encoder: EncoderConfig, tileSize: number, weights: Float32Array): ExportTensor[] {
  const values = unpack(encoderSpecs(encoder, tileSize), weights);
  return family === 'tv-resnet' ? exportTvResnet(values, encoder) : exportVit(values, family, encoder, tileSize);
}

/** A one-paragraph summary for the Setup panel and the CLI. */
export function describePretrained(p: PretrainedEncoder): string {
  const e = p.encoder;
  const arch =
    e.kind === 'vit'
      ? `ViT patch ${e.patch}, dim ${e.dim}, ${e.blocks} blocks, ${e.heads} heads, ${e.mlp === 'swiglu' ? 'SwiGLU' : 'GELU'} MLP ${e.mlpHidden}${e.layerScale ? ', LayerScale' : ''}${e.regTokens ? `, ${e.regTokens} registers` : ''}, ${e.pool} pooling`
      : `torchvision ResNet-${e.depth}${e.truncate ? ' truncated after layer3' : ''}, width ${e.width}`;
  const m = (p.params / 1e6).toFixed(p.params < 1e6 ? 3 : 1);
  return `${p.file}: ${p.family}, ${arch}; ${m}M parameters; feature size ${p.featureDim}; input mean ${e.mean} std ${e.std}`;
}

// torchvision ResNet state dicts <-> the lab's `enc.*` parameters of tv-resnet.ts. Pure data:
// no tfjs, no I/O (the weight readers hand over SourceTensors).
//
// Conv weights: PyTorch OIHW <-> tfjs HWIO. BatchNorm: folded on import (scale = weight /
// sqrt(running_var + eps), shift = bias - running_mean * scale), unfolded on export as weight =
// scale, bias = shift, running_mean = 0, running_var = 1 - eps. `num_batches_tracked` (int64,
// a training counter) is known and ignored: never unexpected, never listed as unused; one note
// counts them. Export writes none (PyTorch's BatchNorm fills a missing one in when it loads a
// plain state dict).
import type { EncoderConfig } from '../config.ts';
import { tvResnetBlocks, tvResnetSpecs, tvStem, BN_EPS, TV_RESNET_BLOCKS, type TvConv } from './tv-resnet.ts';
import {
  WeightMismatchError, hwioToOihw, oihwToHwio, sameShape,
  type EncoderImport, type ExportTensor, type ImportReport, type Misshaped, type SourceTensors,
} from './import-types.ts';

const FAMILY = 'tv-resnet';
const BN_KEYS = ['weight', 'bias', 'running_mean', 'running_var'] as const;

/** A file that is torchvision's ResNet but a layout the lab does not build (ResNet-101, a wide ResNet, ...). */
export class UnsupportedResnetError extends Error {
  constructor(reason: string) {
    super(`unsupported torchvision ResNet: ${reason}`);
    this.name = 'UnsupportedResnetError';
  }
}

export interface TvResnetDetection {
  family: 'tv-resnet';
  options: Partial<EncoderConfig>;
  notes: string[];
}

/** Blocks per stage present in the file: counts `layerN.k.conv1.weight` for k = 0, 1, ... */
function blockCounts(tensors: SourceTensors): number[] {
  const counts: number[] = [];
  for (let s = 1; s <= 4; s++) {
    let k = 0;
    while (tensors.has(`layer${s}.${k}.conv1.weight`)) k++;
    if (k === 0) break;
    counts.push(k);
  }
  return counts;
}

const NAMED: Record<string, string> = { '2,2,2,2': 'ResNet-18', '3,4,6,3': 'ResNet-34 or -50', '3,4,23,3': 'ResNet-101', '3,8,36,3': 'ResNet-152' };

/**
 * Recognises a torchvision ResNet state dict (`conv1.weight`, `bn1.running_mean`,
 * `layer1.0.conv1.weight`) and infers depth, width and truncation. null when the names are not
 * torchvision's ResNet; throws UnsupportedResnetError (with the reason) when they are, but in a
 * layout the lab does not build (ResNet-101/152, wide ResNets, ResNeXt, fewer than 3 stages).
 */
export function detectTvResnet(tensors: SourceTensors): TvResnetDetection | null {
  const stem = tensors.get('conv1.weight');
  if (!stem || !tensors.has('bn1.running_mean') || !tensors.has('layer1.0.conv1.weight')) return null;
  if (stem.shape.length !== 4 || stem.shape[1] !== 3 || stem.shape[2] !== 7 || stem.shape[3] !== 7) {
    throw new UnsupportedResnetError(`conv1.weight is [${stem.shape}], expected [width, 3, 7, 7]`);
  }
  const width = stem.shape[0];
  const isBottleneck = tensors.has('layer1.0.conv3.weight');
  const counts = blockCounts(tensors);
  const layout = `${isBottleneck ? 'Bottleneck' : 'BasicBlock'} [${counts.join(', ')}]`;
  if (counts.length < 3) throw new UnsupportedResnetError(`${layout}: the lab needs layer1..layer3 at least`);
  const full = counts.length === 4 ? counts : [...counts, -1];
  const matches = (d: 18 | 34 | 50) => TV_RESNET_BLOCKS[d].every((n, i) => full[i] === -1 || full[i] === n);
  let depth: 18 | 34 | 50;
  if (isBottleneck && matches(50)) depth = 50;
  else if (!isBottleneck && matches(18)) depth = 18;
  else if (!isBottleneck && matches(34)) depth = 34;
  else {
    const known = NAMED[counts.join(',')];
    throw new UnsupportedResnetError(`${layout}${known ? ` (${known})` : ''}: the lab builds ResNet-18 (BasicBlock [2, 2, 2, 2]), ResNet-34 (BasicBlock [3, 4, 6, 3]) and ResNet-50 (Bottleneck [3, 4, 6, 3])`);
  }
  // Wide ResNets and ResNeXt keep the names but change the inner width (or group conv2).
  const inner = tensors.get('layer1.0.conv2.weight');
  if (inner && (inner.shape[0] !== width || inner.shape[1] !== width)) {
    throw new UnsupportedResnetError(`layer1.0.conv2.weight is [${inner.shape}], expected [${width}, ${width}, 3, 3]: a wide ResNet or ResNeXt (width_per_group / groups) is not supported`);
  }
  const truncate = counts.length === 3;
  const name = `ResNet-${depth}`;
  const notes = [`torchvision ${name} (${layout}), width ${width}`];
  if (truncate) notes.push(`no layer4: truncated after layer3 (features ${width * 4 * (depth === 50 ? 4 : 1)})`);
  const fc = tensors.get('fc.weight');
  if (fc) notes.push(`classifier fc [${fc.shape}] is not used`);
  return { family: FAMILY, options: { kind: 'tv-resnet', depth, width, truncate }, notes };
}

/** Every source name the family knows for this depth and width: all four stages and fc. */
function knownNames(enc: EncoderConfig): Set<string> {
  const known = new Set<string>(['fc.weight', 'fc.bias']);
  const add = (c: TvConv) => {
    known.add(`${c.conv}.weight`);
    for (const k of [...BN_KEYS, 'num_batches_tracked']) known.add(`${c.bn}.${k}`);
  };
  add(tvStem(enc.width));
  for (const b of tvResnetBlocks(enc, 4)) {
    b.convs.forEach(add);
    if (b.down) add(b.down);
  }
  return known;
}

/** The convs (each with its BatchNorm) of `enc` in state-dict order: the stem, then each block's. */
function convsOf(enc: EncoderConfig): TvConv[] {
  const out = [tvStem(enc.width)];
  for (const b of tvResnetBlocks(enc)) out.push(...b.convs, ...(b.down ? [b.down] : []));
  return out;
}

const oihw = (c: TvConv) => [c.cout, c.cin, c.k, c.k];

/**
 * Reads a torchvision ResNet state dict into the lab's parameters of `enc` (tvResnetSpecs order),
 * one source tensor at a time. Throws WeightMismatchError when a needed tensor is missing or
 * mis-shaped, or when the file holds blocks this depth does not have (a deeper ResNet).
 */
export async function importTvResnet(tensors: SourceTensors, enc: EncoderConfig): Promise<EncoderImport> {
  const convs = convsOf(enc);
  const needed = new Set<string>();
  const missing: string[] = [];
  const misshaped: Misshaped[] = [];
  const check = (name: string, expected: number[]) => {
    needed.add(name);
    const t = tensors.get(name);
    if (!t) missing.push(name);
    else if (!sameShape(t.shape, expected)) misshaped.push({ name, expected, found: t.shape });
  };
  for (const c of convs) {
    check(`${c.conv}.weight`, oihw(c));
    for (const k of BN_KEYS) check(`${c.bn}.${k}`, [c.cout]);
  }
  const known = knownNames(enc);
  const unexpected: string[] = [];
  const unused: string[] = [];
  let counters = 0;
  for (const name of tensors.keys()) {
    if (!known.has(name)) unexpected.push(name);
    else if (name.endsWith('.num_batches_tracked')) counters++;
    else if (!needed.has(name)) unused.push(name);
  }
  const notes: string[] = [];
  if (counters) notes.push(`${counters} BatchNorm num_batches_tracked counters ignored`);
  if (unused.some((n) => n.startsWith('layer4.'))) notes.push('layer4 is not used: the encoder is truncated after layer3');
  const report: ImportReport = { family: FAMILY, missing, unexpected, unused, misshaped, notes };
  // Extra blocks (layer1.2 in a ResNet-18) mean a deeper network than the one chosen: loading the
  // rest would silently drop them, so they fail like a missing tensor.
  const extraBlocks = unexpected.some((n) => /^layer\d+\.\d+\./.test(n));
  if (missing.length || misshaped.length || extraBlocks) throw new WeightMismatchError(report);

  const values = new Map<string, Float32Array>();
  for (const c of convs) {
    const w = await tensors.get(`${c.conv}.weight`)!.read();
    values.set(`enc.${c.conv}.weight`, oihwToHwio(w, oihw(c)));
    const bn: Float32Array[] = []; // weight, bias, running_mean, running_var
    for (const k of BN_KEYS) bn.push(await tensors.get(`${c.bn}.${k}`)!.read());
    const scale = new Float32Array(c.cout);
    const shift = new Float32Array(c.cout);
    for (let i = 0; i < c.cout; i++) {
      scale[i] = bn[0][i] / Math.sqrt(bn[3][i] + BN_EPS);
      shift[i] = bn[1][i] - bn[2][i] * scale[i];
    }
    values.set(`enc.${c.bn}.scale`, scale);
    values.set(`enc.${c.bn}.shift`, shift);
  }
  // Spec order, so a caller can pack them as tvResnetSpecs lists them.
  const ordered = new Map(tvResnetSpecs(enc).map((s) => [s.name, values.get(s.name)!]));
  return { values: ordered, report };
}

/**
 * The lab's values (`enc.*`, tvResnetSpecs) as a torchvision state dict: conv weights OIHW, each
 * BatchNorm as weight = scale, bias = shift, running_mean = 0, running_var = 1 - eps (so
 * weight / sqrt(running_var + eps) = scale). No num_batches_tracked, no layer4 when truncated, no fc.
 */
export function exportTvResnet(values: Map<string, Float32Array>, enc: EncoderConfig): ExportTensor[] {
  const out: ExportTensor[] = [];
  const get = (name: string, size: number) => {
    const v = values.get(name);
    if (!v) throw new Error(`exportTvResnet: no values for ${name}`);
    if (v.length !== size) throw new Error(`exportTvResnet: ${name} has ${v.length} values, expected ${size}`);
    return v;
  };
  for (const c of convsOf(enc)) {
    const shape = oihw(c);
    const hwio = [c.k, c.k, c.cin, c.cout];
    out.push({ name: `${c.conv}.weight`, shape, data: hwioToOihw(get(`enc.${c.conv}.weight`, shape.reduce((a, b) => a * b, 1)), hwio) });
    out.push({ name: `${c.bn}.weight`, shape: [c.cout], data: Float32Array.from(get(`enc.${c.bn}.scale`, c.cout)) });
    out.push({ name: `${c.bn}.bias`, shape: [c.cout], data: Float32Array.from(get(`enc.${c.bn}.shift`, c.cout)) });
    out.push({ name: `${c.bn}.running_mean`, shape: [c.cout], data: new Float32Array(c.cout) });
    out.push({ name: `${c.bn}.running_var`, shape: [c.cout], data: new Float32Array(c.cout).fill(1 - BN_EPS) });
  }
  return out;
}

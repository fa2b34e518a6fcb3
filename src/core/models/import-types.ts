// The seam between weight files (src/core/weights/) and the encoders' name maps: a name map reads
// the source tensors it needs, converts names and layouts (PyTorch Linear [out, in] -> tfjs
// [in, out]; conv OIHW -> HWIO), and says what it did not use. Pure data: no tfjs, no I/O.

/** One tensor of a weight file, decoded to float32 on demand (a 1 GB file is never read whole). */
export interface SourceTensor {
  shape: number[];
  dtype: string;
  read(): Promise<Float32Array>;
}

/** A weight file's tensors by (unwrapped, prefix-stripped) name. */
export type SourceTensors = Map<string, SourceTensor>;

export interface Misshaped {
  name: string;
  expected: number[];
  found: number[];
}

export interface ImportReport {
  /** 'timm-vit' | 'hf-vit' | 'tv-vit' | 'tv-resnet' */
  family: string;
  /** Source names the chosen model needs that the file lacks. */
  missing: string[];
  /** Source names that no part of the family's name map knows. */
  unexpected: string[];
  /** Known names the chosen model does not use (ResNet-50's layer4 and fc when truncated, a classification head, a pooler). */
  unused: string[];
  misshaped: Misshaped[];
  /** Other facts worth showing (e.g. "position embeddings resized from 14x14 to 4x4"). */
  notes: string[];
}

/** Values in the lab's layout by the lab's parameter name (`enc.*`), ready for writeParams. */
export interface EncoderImport {
  values: Map<string, Float32Array>;
  report: ImportReport;
}

/** A tensor to write back out in the source's names and layout (PyTorch's). */
export interface ExportTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Thrown when a file cannot become the chosen model: names the problem keys. */
export class WeightMismatchError extends Error {
  constructor(readonly report: ImportReport) {
    const parts: string[] = [];
    if (report.missing.length) parts.push(`missing ${report.missing.length} (${report.missing.slice(0, 5).join(', ')}${report.missing.length > 5 ? ', ...' : ''})`);
    if (report.misshaped.length) parts.push(`mis-shaped ${report.misshaped.slice(0, 3).map((m) => `${m.name} [${m.found}] (expected [${m.expected}])`).join(', ')}${report.misshaped.length > 3 ? ', ...' : ''}`);
    if (report.unexpected.length) parts.push(`unexpected ${report.unexpected.length} (${report.unexpected.slice(0, 5).join(', ')}${report.unexpected.length > 5 ? ', ...' : ''})`);
    super(`weights do not fit the ${report.family} encoder: ${parts.join('; ')}`);
    this.name = 'WeightMismatchError';
  }
}

/** Layout helpers shared by the name maps. PyTorch Linear weight [out, in] -> tfjs [in, out]. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

/** PyTorch conv weight [O, I, H, W] -> tfjs filter [H, W, I, O]. */
export function oihwToHwio(src: Float32Array, [o, i, h, w]: number[]): Float32Array {
  const out = new Float32Array(src.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = src[((a * i + b) * h + y) * w + x];
  return out;
}

/** tfjs filter [H, W, I, O] -> PyTorch [O, I, H, W]. */
export function hwioToOihw(src: Float32Array, [h, w, i, o]: number[]): Float32Array {
  const out = new Float32Array(src.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((a * i + b) * h + y) * w + x] = src[((y * w + x) * i + b) * o + a];
  return out;
}

export const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

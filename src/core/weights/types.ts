// The shape every weight-file reader returns (safetensors.ts, torch-zip.ts; opened by state-dict.ts).

export interface TensorEntry {
  name: string;
  /** safetensors' dtype names (F32, F16, BF16, F64, I64, ...) for both formats */
  dtype: string;
  shape: number[];
  /** decodes to float32 on demand */
  read(): Promise<Float32Array>;
}

export interface WeightFile {
  file: string;
  format: 'safetensors' | 'torch';
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** what unwrapping did, for the report, e.g. "nested under 'teacher'", "stripped prefix 'module.'" */
  notes: string[];
}

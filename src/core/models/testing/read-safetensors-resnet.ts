// Test helper: a tiny safetensors reader (F32 and I64 only) for the tv-resnet fixtures, until the
// real weight readers (src/core/weights/) are wired in. Layout: 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}}, data from 8 + N.
// Web APIs only (it sits under tsconfig.core.json): tests pass `new Blob([readFileSync(path)])`.
import type { SourceTensors } from '../import-types.ts';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A Blob's tensors by name, each read on demand as float32. */
export async function readSafetensorsBlob(blob: Blob): Promise<SourceTensors> {
  const head = new DataView(await blob.slice(0, 8).arrayBuffer());
  const n = Number(head.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(await blob.slice(8, 8 + n).arrayBuffer())) as Record<string, Entry | Record<string, string>>;
  const tensors: SourceTensors = new Map();
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = value as Entry;
    if (e.dtype !== 'F32' && e.dtype !== 'I64') throw new Error(`${name}: dtype ${e.dtype} (this test reader knows F32 and I64)`);
    const [begin, end] = e.data_offsets;
    tensors.set(name, {
      shape: e.shape,
      dtype: e.dtype,
      async read() {
        const bytes = await blob.slice(8 + n + begin, 8 + n + end).arrayBuffer();
        if (e.dtype === 'F32') return new Float32Array(bytes);
        return Float32Array.from(new BigInt64Array(bytes), (v) => Number(v));
      },
    });
  }
  return tensors;
}

// Test helper: a tiny F32-only safetensors reader for the PyTorch-made ViT fixtures in
// fixtures/pretrained/ (8-byte little-endian header length N, a JSON header, data offsets
// relative to byte 8 + N). Web APIs only (it sits under tsconfig.core.json): tests pass
// `new Blob([readFileSync(path)])`. The real reader lives in src/core/weights/.
import type { SourceTensors } from '../import-types.ts';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A Blob's tensors by name, each read on demand (F32 only). */
export async function readFixtureTensors(blob: Blob): Promise<SourceTensors> {
  const n = Number(new DataView(await blob.slice(0, 8).arrayBuffer()).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(await blob.slice(8, 8 + n).arrayBuffer())) as Record<string, unknown>;
  const base = 8 + n;
  const tensors: SourceTensors = new Map();
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: [begin, end] } = value as Entry;
    tensors.set(name, {
      shape,
      dtype,
      async read() {
        if (dtype !== 'F32') throw new Error(`${name} is ${dtype}; this test reader knows only F32`);
        return new Float32Array(await blob.slice(base + begin, base + end).arrayBuffer());
      },
    });
  }
  return tensors;
}

/** Every tensor of a Blob, read. */
export async function readFixtureAll(blob: Blob): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of await readFixtureTensors(blob)) out.set(name, { shape: t.shape, data: await t.read() });
  return out;
}

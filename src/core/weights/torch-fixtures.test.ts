// PyTorch-made fixtures (fixtures/pretrained/, made by scripts/golden/make_golden.py): each
// torch.save checkpoint must hold exactly the tensors of its safetensors twin, and the bad
// inputs must be refused. Skipped only when the fixture directory is absent.
import { existsSync, openAsBlob, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WeightFileError, openWeightFile } from './index.ts';

const dir = fileURLToPath(new URL('../../../fixtures/pretrained/', import.meta.url));
const present = existsSync(dir);
const open = async (name: string) => openWeightFile(await openAsBlob(dir + name), name);
const BAD = ['evil.pt', 'legacy.pt'];
/** Checkpoint ids (each `<id>.pt` beside `<id>.safetensors`); one placeholder when absent, so the skip shows. */
const ids = present ? readdirSync(dir).filter((f) => f.endsWith('.pt') && !BAD.includes(f)).map((f) => f.slice(0, -3)) : ['(fixtures absent)'];
/** What unwrapping must report for the checkpoints whose nesting the fixture README describes. */
const NOTES: Record<string, string[]> = {
  'tv-resnet18-w8': ["nested under 'state_dict'; ignored 'epoch'", "stripped prefix 'module.' from every name"],
  'tv-resnet50trunc-w8': ["nested under 'model'"],
  'tv-vit': [],
  'timm-vit-x': ["nested under 'teacher'", "stripped prefix 'backbone.' from every name"],
  'hf-vit': [],
};

const refusal = async (name: string): Promise<string> => {
  const e = await open(name).catch((err: unknown) => err);
  expect(e).toBeInstanceOf(WeightFileError);
  return (e as Error).message;
};

describe('PyTorch-made fixtures', () => {
  it.skipIf(!present)('include the checkpoints this test knows', () => {
    expect(ids.sort()).toEqual(expect.arrayContaining(Object.keys(NOTES).sort()));
  });

  for (const id of ids) {
    it.skipIf(!present)(`${id}.pt holds the tensors of ${id}.safetensors`, async () => {
      const [pt, st] = await Promise.all([open(`${id}.pt`), open(`${id}.safetensors`)]);
      expect([pt.format, st.format]).toEqual(['torch', 'safetensors']);
      if (NOTES[id]) expect(pt.notes).toEqual(NOTES[id]);
      expect([...pt.tensors.keys()].sort()).toEqual([...st.tensors.keys()].sort());
      for (const [name, want] of st.tensors) {
        const got = pt.tensors.get(name)!;
        expect({ name, dtype: got.dtype, shape: got.shape }).toEqual({ name, dtype: want.dtype, shape: want.shape });
        expect(Buffer.from((await got.read()).buffer).equals(Buffer.from((await want.read()).buffer)), name).toBe(true);
      }
    });
  }

  it.skipIf(!present)('timm-vit-x in F16 and BF16 is the F32 state dict rounded to nearest', async () => {
    const [f32, f16, bf16] = await Promise.all(['timm-vit-x.safetensors', 'timm-vit-x.f16.safetensors', 'timm-vit-x.bf16.safetensors'].map(open));
    for (const [name, t] of f32.tensors) {
      const exact = await t.read();
      const bits = new Uint32Array(exact.buffer);
      // bfloat16 round to nearest even: add 0x7fff plus the kept half's lowest bit, keep the high half
      const rounded = new Float32Array(Uint32Array.from(bits, (b) => ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16).buffer);
      expect(f16.tensors.get(name)!.dtype).toBe('F16');
      expect(bf16.tensors.get(name)!.dtype).toBe('BF16');
      expect(await bf16.tensors.get(name)!.read(), name).toEqual(rounded);
      // float16 keeps 11 significant bits: within half a unit in the last place (2^-25 absolute for subnormals)
      const half = await f16.tensors.get(name)!.read();
      const worst = exact.reduce((w, x, i) => Math.max(w, Math.abs(half[i] - x) - Math.max(Math.abs(x) * 2 ** -11, 2 ** -25)), -Infinity);
      expect(worst, name).toBeLessThanOrEqual(0);
    }
  });

  it.skipIf(!present)('evil.pt is refused at its os.system global, with nothing run', async () => {
    expect(await refusal('evil.pt')).toBe('evil.pt: the pickle asks to call posix.system; only tensor rebuilding is allowed, so nothing was executed');
  });

  it.skipIf(!present)('legacy.pt gets the legacy-format message', async () => {
    expect(await refusal('legacy.pt')).toMatch(/^legacy\.pt: this is the legacy torch\.save format .*torch\.save\(state_dict, path\), or convert it to safetensors$/);
  });
});

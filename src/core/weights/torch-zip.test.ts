import { describe, expect, it } from 'vitest';
import { WeightFileError } from './errors.ts';
import { openTorchZip } from './torch-zip.ts';
import { CountingBlob } from './testing/counting-blob.ts';
import { refusal } from './testing/refusal.ts';
import { OP, PickleBuilder, type PickleValue, TestTensor, f32Bytes, writeTorchZip } from './testing/torch-writer.ts';
import { writeZip } from './testing/zip-writer.ts';

const open = (bytes: Uint8Array<ArrayBuffer>, file = 'model.pt') => openTorchZip(new Blob([bytes]), file);
const checkpoint = (value: PickleValue, storages: Record<string, Uint8Array>, options?: Parameters<typeof writeTorchZip>[2]) =>
  writeTorchZip(PickleBuilder.pickle(value), storages, options);
const reason = refusal;
const values = async (file: Awaited<ReturnType<typeof openTorchZip>>, name: string) => Array.from(await file.tensors.get(name)!.read());

describe('openTorchZip', () => {
  const stateDict = new Map([
    ['conv.weight', new TestTensor('0', [2, 3])],
    ['conv.bias', new TestTensor('1', [2], { parameter: true })],
  ]);
  const storages = { '0': f32Bytes([1, 2, 3, 4, 5, 6]), '1': f32Bytes([-1, 0.5]) };

  it('reads a state dict, whatever the archive folder is called', async () => {
    for (const archive of ['archive', 'tv-resnet18-w8', 'pytorch_model']) {
      const file = await open(checkpoint(stateDict, storages, { archive }));
      expect(file.format).toBe('torch');
      expect(file.notes).toEqual([]);
      expect([...file.tensors.keys()]).toEqual(['conv.weight', 'conv.bias']);
      expect(file.tensors.get('conv.weight')).toMatchObject({ name: 'conv.weight', dtype: 'F32', shape: [2, 3] });
      expect(await values(file, 'conv.weight')).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await values(file, 'conv.bias')).toEqual([-1, 0.5]);
    }
  });

  it('reads ZIP64 archives (64-bit directory and offsets)', async () => {
    const file = await open(checkpoint(stateDict, storages, { zip64: true }));
    expect(await values(file, 'conv.bias')).toEqual([-1, 0.5]);
  });

  it('finds the directory behind a zip comment', async () => {
    const entries = [
      { name: 'a/data.pkl', data: PickleBuilder.pickle(new Map([['w', new TestTensor('0', [1])]])) },
      { name: 'a/data/0', data: f32Bytes([3]) },
    ];
    expect(await values(await open(writeZip(entries, { comment: 'hello' })), 'w')).toEqual([3]);
  });

  it('handles storage offsets, non-contiguous strides and shared storages', async () => {
    // one storage of 12 floats 0..11 holding a [3, 4] matrix, viewed several ways
    const matrix = f32Bytes(Array.from({ length: 12 }, (_, i) => i));
    const file = await open(
      checkpoint(
        new Map([
          ['m', new TestTensor('s', [3, 4], { numel: 12 })],
          ['transposed', new TestTensor('s', [4, 3], { stride: [1, 4], numel: 12 })],
          ['row1', new TestTensor('s', [4], { offset: 4, numel: 12 })],
          ['column2', new TestTensor('s', [3, 1], { offset: 2, stride: [4, 1], numel: 12 })],
          ['every_other', new TestTensor('s', [2, 2], { offset: 1, stride: [8, 2], numel: 12 })],
          ['expanded', new TestTensor('s', [2, 3], { offset: 5, stride: [0, 1], numel: 12 })],
          ['empty', new TestTensor('s', [0, 4], { numel: 12 })],
          ['scalar', new TestTensor('s', [], { offset: 11, numel: 12 })],
        ]),
        { s: matrix },
      ),
    );
    expect(await values(file, 'm')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(await values(file, 'transposed')).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(await values(file, 'row1')).toEqual([4, 5, 6, 7]);
    expect(await values(file, 'column2')).toEqual([2, 6, 10]);
    expect(await values(file, 'every_other')).toEqual([1, 3, 9, 11]);
    expect(await values(file, 'expanded')).toEqual([5, 6, 7, 5, 6, 7]);
    expect(await values(file, 'empty')).toEqual([]);
    expect(await values(file, 'scalar')).toEqual([11]);
  });

  it('decodes storages by their class', async () => {
    const f16 = new Uint8Array([0x00, 0x3c, 0x01, 0x00, 0x00, 0xfc]);
    const i64 = new Uint8Array(new BigInt64Array([-3n, 2n ** 35n]).buffer);
    const bf16 = new Uint8Array([0xab, 0x3e]);
    const file = await open(
      checkpoint(
        new Map([
          ['h', new TestTensor('h', [3], { storageClass: 'HalfStorage' })],
          ['steps', new TestTensor('l', [2], { storageClass: 'LongStorage' })],
          ['b', new TestTensor('b', [1], { storageClass: 'BFloat16Storage' })],
        ]),
        { h: f16, l: i64, b: bf16 },
      ),
    );
    expect(await values(file, 'h')).toEqual([1, 2 ** -24, -Infinity]);
    expect(await values(file, 'steps')).toEqual([-3, 2 ** 35]);
    expect(await values(file, 'b')).toEqual([0.333984375]);
    expect([...file.tensors.values()].map((t) => t.dtype)).toEqual(['F16', 'I64', 'BF16']);
  });

  it("reads the pickle and directory on open, and only a tensor's bytes on read", async () => {
    const big = f32Bytes(new Array(100_000).fill(2));
    const bytes = checkpoint(new Map([['big', new TestTensor('0', [100_000])], ['small', new TestTensor('1', [2])]]), { '0': big, '1': f32Bytes([7, 8]) });
    const blob = new CountingBlob([bytes]);
    const file = await openTorchZip(blob, 'stream.pt');
    expect(blob.bytesRead).toBeLessThan(2000);
    blob.ranges.length = 0;
    expect(Array.from(await file.tensors.get('small')!.read())).toEqual([7, 8]);
    // the local header, then exactly the 8 bytes of data
    expect(blob.ranges.map(([a, b]) => b - a)).toEqual([30, 8]);
  });

  it('unwraps a nested checkpoint and strips module./backbone.', async () => {
    const teacher = new Map([
      ['module.backbone.w', new TestTensor('0', [1])],
      ['module.backbone.b', new TestTensor('1', [1])],
    ]);
    const file = await open(
      checkpoint({ student: new Map([['x', new TestTensor('1', [1])]]), teacher, epoch: 100, args: 'lr=0.1' }, { '0': f32Bytes([5]), '1': f32Bytes([6]) }),
    );
    expect([...file.tensors.keys()]).toEqual(['w', 'b']);
    expect(await values(file, 'w')).toEqual([5]);
    expect(file.notes).toEqual(["nested under 'teacher'; ignored 'student', 'epoch', 'args'", "stripped prefix 'module.backbone.' from every name"]);
  });
});

describe('openTorchZip refuses', () => {
  const simple = new Map([['w', new TestTensor('0', [2])]]);

  it('compressed entries (deflate)', async () => {
    expect(await reason(open(checkpoint(simple, { '0': f32Bytes([1, 2]) }, { method: 8 })))).toBe(
      "zip entry 'archive/data.pkl' is compressed (deflate); torch.save stores entries uncompressed, so re-save the checkpoint with torch.save rather than re-zipping it",
    );
  });

  it('the legacy torch.save format, saying how to re-save', async () => {
    const legacy = new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
    const why = await reason(open(legacy));
    expect(why).toMatch(/^this is the legacy torch\.save format \(before PyTorch 1\.6, not a zip\)/);
    expect(why).toContain('torch.save(state_dict, path)');
    expect(why).toContain('safetensors');
    expect(await reason(open(PickleBuilder.pickle({ a: 1 })))).toMatch(/^this is a bare pickle, not a torch\.save zip; load it with torch\.load/);
    expect(await reason(open(new Uint8Array([1, 2, 3])))).toBe("not a torch.save checkpoint (it does not start with the zip signature 'PK\\x03\\x04')");
  });

  it('a zip without data.pkl, or one that is not a zip at all', async () => {
    const zip = writeZip([{ name: 'weights/model.bin', data: new Uint8Array(4) }]);
    expect(await reason(open(zip))).toBe('the zip has no <archive>/data.pkl, so it is not a torch.save checkpoint (entries: weights/model.bin)');
    const nested = writeZip([{ name: 'a/b/data.pkl', data: PickleBuilder.pickle(null) }]);
    expect(await reason(open(nested))).toMatch(/no <archive>\/data\.pkl/);
    const cut = checkpoint(simple, { '0': f32Bytes([1, 2]) }).slice(0, 200);
    expect(await reason(open(cut))).toBe('not a zip file (no end of central directory record)');
  });

  it('an evil pickle, before reading any tensor', async () => {
    const evil = new Uint8Array([OP.PROTO, 2, OP.GLOBAL, ...new TextEncoder().encode('posix\nsystem\n'), OP.SHORT_BINUNICODE, 2, 0x6c, 0x73, OP.TUPLE1, OP.REDUCE, OP.STOP]);
    const zip = writeZip([{ name: 'evil/data.pkl', data: evil }]);
    const e = await open(zip, 'evil.pt').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(WeightFileError);
    expect((e as Error).message).toBe('evil.pt: the pickle asks to call posix.system; only tensor rebuilding is allowed, so nothing was executed');
  });

  it('missing, short or out-of-range storages', async () => {
    expect(await reason(open(checkpoint(simple, {})))).toBe("tensor 'w' names storage '0', which the zip lacks");
    expect(await reason(open(checkpoint(simple, { '0': f32Bytes([1]) })))).toBe("storage '0' holds 4 bytes but should hold 2 x F32 = 8");
    const past = new Map([['w', new TestTensor('0', [2], { offset: 1, numel: 2 })]]);
    expect(await reason(open(checkpoint(past, { '0': f32Bytes([1, 2]) })))).toBe("truncated: tensor 'w' needs elements 1..3 of storage '0', which holds 2");
  });

  it('a checkpoint without a state dict', async () => {
    expect(await reason(open(checkpoint({ epoch: 3 }, {})))).toBe("could not find the state dict: no entry holds tensors; the keys are 'epoch'");
    expect(await reason(open(checkpoint([1, 2], {})))).toBe('the checkpoint holds no dict of tensors (found a list of 2)');
  });

  it('a big-endian checkpoint', async () => {
    const entries = [
      { name: 'a/data.pkl', data: PickleBuilder.pickle(simple) },
      { name: 'a/byteorder', data: new TextEncoder().encode('big') },
    ];
    expect(await reason(open(writeZip(entries)))).toMatch(/big-endian/);
  });

  it('damaged zip structures', async () => {
    const good = checkpoint(simple, { '0': f32Bytes([1, 2]) });
    const view = new DataView(good.buffer);
    const eocd = good.length - 22;
    const directory = view.getUint32(eocd + 16, true);
    const broken = good.slice();
    new DataView(broken.buffer).setUint32(directory, 0);
    expect(await reason(open(broken))).toMatch(/^zip central directory entry 0 is damaged/);
    const pastEnd = good.slice();
    new DataView(pastEnd.buffer).setUint32(eocd + 16, good.length);
    expect(await reason(open(pastEnd))).toMatch(/^truncated: the zip central directory needs bytes/);
    // the second local header is byteorder's, read on open
    const noLocal = good.slice();
    const second = good.findIndex((b, i) => i > 0 && b === 0x50 && good[i + 1] === 0x4b && good[i + 2] === 3 && good[i + 3] === 4);
    noLocal[second] = 0;
    expect(await reason(open(noLocal))).toBe(`zip entry 'archive/byteorder' has no local header at byte ${second}`);
  });
});

import { describe, expect, it } from 'vitest';
import { WeightFileError } from './errors.ts';
import { MAX_HEADER_BYTES, openSafetensors, writeSafetensors } from './safetensors.ts';
import { CountingBlob } from './testing/counting-blob.ts';
import { refusal } from './testing/refusal.ts';

/** A safetensors file from a header (object or raw text) and a data section; `headerLength` overrides the u64. */
function rawFile(header: object | string, data: Uint8Array = new Uint8Array(), headerLength?: number): Blob {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return new Blob([out]);
}

const reason = refusal;

describe('writeSafetensors / openSafetensors', () => {
  const tensors = [
    { name: 'b.weight', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 1e-30, -0, 6]) },
    { name: 'a.bias', shape: [3], data: new Float32Array([0.25, NaN, -Infinity]) },
    { name: 'scalar', shape: [], data: new Float32Array([42]) },
    { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
  ];

  it('round-trips tensors, their order and metadata', async () => {
    const bytes = writeSafetensors(tensors, { format: 'pt', note: 'hi' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    expect(bytes[8 + headerLength - 1]).toBe(0x20); // padded with spaces
    const file = await openSafetensors(new Blob([bytes]), 'rt.safetensors');
    expect(file.format).toBe('safetensors');
    expect(file.metadata).toEqual({ format: 'pt', note: 'hi' });
    expect(file.notes).toEqual([]);
    expect([...file.tensors.keys()]).toEqual(['b.weight', 'a.bias', 'scalar', 'empty']);
    for (const t of tensors) {
      const entry = file.tensors.get(t.name)!;
      expect(entry).toMatchObject({ name: t.name, dtype: 'F32', shape: t.shape });
      expect(await entry.read()).toEqual(t.data);
    }
  });

  it('writes no metadata key when none is given, and refuses bad input', () => {
    const text = new TextDecoder().decode(writeSafetensors([tensors[0]]));
    expect(text).not.toContain('__metadata__');
    expect(() => writeSafetensors([tensors[0], tensors[0]])).toThrow(/duplicate/);
    expect(() => writeSafetensors([{ name: 'x', shape: [2], data: new Float32Array(3) }])).toThrow(/3 values for shape \[2\]/);
  });

  it('keeps a tensor named __proto__ as an ordinary name', async () => {
    const file = await openSafetensors(new Blob([writeSafetensors([{ name: '__proto__', shape: [1], data: new Float32Array([7]) }])]), 'p');
    expect(await file.tensors.get('__proto__')!.read()).toEqual(new Float32Array([7]));
  });

  it("reads only the header on open, and only a tensor's bytes on read", async () => {
    const big = { name: 'big', shape: [1000, 250], data: new Float32Array(250_000).fill(1) };
    const small = { name: 'small', shape: [4], data: new Float32Array([1, 2, 3, 4]) };
    const bytes = writeSafetensors([big, small]);
    const blob = new CountingBlob([bytes]);
    const file = await openSafetensors(blob, 'stream.safetensors');
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(blob.ranges).toEqual([
      [0, 8],
      [8, 8 + headerLength],
    ]);
    blob.ranges.length = 0;
    expect(await file.tensors.get('small')!.read()).toEqual(small.data);
    const smallStart = 8 + headerLength + big.data.byteLength;
    expect(blob.ranges).toEqual([[smallStart, smallStart + 16]]);
  });

  it('decodes F16, BF16, F64, I64 and BOOL tensors', async () => {
    const data = new Uint8Array([
      ...[0x00, 0x3c, 0x01, 0x00, 0x00, 0x7c], // F16 1, 2^-24, inf
      ...[0xab, 0x3e], // BF16 1/3 rounded to nearest
      ...new Uint8Array(new Float64Array([-0.1]).buffer),
      ...new Uint8Array(new BigInt64Array([-5n, 2n ** 33n]).buffer),
      ...[0, 1],
    ]);
    const file = await openSafetensors(
      rawFile(
        {
          h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
          bf: { dtype: 'BF16', shape: [1], data_offsets: [6, 8] },
          d: { dtype: 'F64', shape: [1, 1], data_offsets: [8, 16] },
          l: { dtype: 'I64', shape: [2], data_offsets: [16, 32] },
          m: { dtype: 'BOOL', shape: [2], data_offsets: [32, 34] },
        },
        data,
      ),
      'types.safetensors',
    );
    const read = async (n: string) => Array.from(await file.tensors.get(n)!.read());
    expect(await read('h')).toEqual([1, 2 ** -24, Infinity]);
    expect(await read('bf')).toEqual([0.333984375]);
    expect(await read('d')).toEqual([Math.fround(-0.1)]);
    expect(await read('l')).toEqual([-5, 2 ** 33]);
    expect(await read('m')).toEqual([0, 1]);
    expect(file.tensors.get('bf')!.dtype).toBe('BF16');
  });

  it('strips module. and backbone. when every name has them', async () => {
    const one = (name: string) => ({ name, shape: [1], data: new Float32Array([1]) });
    const file = await openSafetensors(new Blob([writeSafetensors([one('module.backbone.a'), one('module.backbone.b')])]), 's');
    expect([...file.tensors.keys()]).toEqual(['a', 'b']);
    expect(file.tensors.get('a')!.name).toBe('a');
    expect(file.notes).toEqual(["stripped prefix 'module.backbone.' from every name"]);
    const mixed = await openSafetensors(new Blob([writeSafetensors([one('module.a'), one('b')])]), 's');
    expect([...mixed.tensors.keys()]).toEqual(['module.a', 'b']);
  });
});

describe('openSafetensors refuses bad files with a reason', () => {
  it('a file shorter than 8 bytes', async () => {
    expect(await reason(openSafetensors(new Blob([new Uint8Array(5)]), 'short'))).toBe('file is 5 bytes, shorter than the 8-byte header length');
  });

  it('a header over the 100 MB limit, or past the end of the file', async () => {
    expect(await reason(openSafetensors(rawFile('{}', undefined, MAX_HEADER_BYTES + 1), 'x'))).toMatch(/header length 100000001 bytes is over the format's limit/);
    expect(await reason(openSafetensors(rawFile('{}', undefined, 2 ** 60), 'x'))).toMatch(/over the format's limit/);
    expect(await reason(openSafetensors(rawFile('{}', undefined, 100), 'x'))).toBe('truncated: the header needs bytes 8..108 but the file has 10');
  });

  it('a header that is not JSON, not UTF-8, or not an object', async () => {
    expect(await reason(openSafetensors(rawFile('{"a": '), 'x'))).toMatch(/^the header is not valid JSON \(/);
    const bad = new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 0x22, 0xc3, 0x28, 0x22, 0x20, 0x20, 0x20, 0x20]);
    expect(await reason(openSafetensors(new Blob([bad]), 'x'))).toBe('the header is not valid UTF-8');
    expect(await reason(openSafetensors(rawFile('[1, 2]'), 'x'))).toBe('the header is JSON but not an object of tensors');
  });

  it('a tensor whose bytes lie past the end of the file', async () => {
    const file = rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(12));
    const headerEnd = 8 + JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }).length;
    expect(await reason(openSafetensors(file, 'x'))).toBe(`truncated: tensor 'w' needs bytes ${headerEnd}..${headerEnd + 16} but the file has ${headerEnd + 12}`);
  });

  it('a byte length that does not match dtype and shape', async () => {
    const file = rawFile({ w: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(await reason(openSafetensors(file, 'x'))).toBe("tensor 'w' is F16 [2, 3], 12 bytes, but its data_offsets span 8 bytes");
  });

  it('malformed entries and metadata', async () => {
    const open = (h: object) => reason(openSafetensors(rawFile(h, new Uint8Array(8)), 'x'));
    expect(await open({ w: { shape: [1], data_offsets: [0, 4] } })).toBe("tensor 'w' has no dtype");
    expect(await open({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } })).toMatch(/shape \[-1\], not a list/);
    expect(await open({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } })).toMatch(/data_offsets \[4,0\]/);
    expect(await open({ w: 3 })).toBe("tensor 'w' has no dtype");
    expect(await open({ __metadata__: { a: 1 } })).toBe("__metadata__ must map strings to strings, but 'a' is 1");
    expect(await open({ __metadata__: 'x' })).toBe('__metadata__ is not an object');
  });

  it('an unknown dtype, when the tensor is read', async () => {
    const file = await openSafetensors(rawFile({ q: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)), 'f8.safetensors');
    expect(file.tensors.get('q')!.dtype).toBe('F8_E4M3');
    const e = await file.tensors.get('q')!.read().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(WeightFileError);
    expect((e as Error).message).toMatch(/^f8\.safetensors: tensor 'q' has dtype F8_E4M3, which this reader does not decode \(it decodes F64, F32/);
  });

  it('turns a failing blob read into a WeightFileError', async () => {
    const blob = new Blob([writeSafetensors([{ name: 'w', shape: [1], data: new Float32Array([1]) }])]);
    const file = await openSafetensors(blob, 'gone');
    blob.slice = () => {
      throw new TypeError('file was modified');
    };
    const e = await file.tensors.get('w')!.read().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(WeightFileError);
    expect((e as Error).message).toBe('gone: could not read the file (TypeError: file was modified)');
  });
});

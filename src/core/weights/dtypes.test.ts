import { describe, expect, it } from 'vitest';
import { decodeToFloat32 } from './dtypes.ts';

/** Little-endian bytes of unsigned integers `width` bytes wide (BigInt for 8-byte words). */
function le(width: number, values: (number | bigint)[]): Uint8Array {
  const out = new Uint8Array(width * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (width === 8) view.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(v)), true);
    else for (let b = 0; b < width; b++) out[i * width + b] = Number((BigInt(v) >> BigInt(8 * b)) & 0xffn);
  });
  return out;
}

const decode = (dtype: string, width: number, values: (number | bigint)[]) => Array.from(decodeToFloat32(le(width, values), dtype, values.length));

describe('decodeToFloat32', () => {
  it('decodes F16 normals, subnormals, zeros, infinities and NaN', () => {
    const got = decode('F16', 2, [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x03ff, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00]);
    expect(got.slice(0, 4)).toEqual([1, -2, 0.333251953125, 65504]);
    expect(got[4]).toBe(2 ** -24); // smallest subnormal
    expect(got[5]).toBe(1023 * 2 ** -24); // largest subnormal
    expect(Object.is(got[6], 0)).toBe(true);
    expect(Object.is(got[7], -0)).toBe(true);
    expect(got.slice(8, 10)).toEqual([Infinity, -Infinity]);
    expect(got[10]).toBeNaN();
  });

  it('decodes BF16 as the high half of a float32', () => {
    // 0x3eab is 1/3 rounded to nearest (truncation would give 0x3eaa = 0.33203125); 0x4049 is pi
    const got = decode('BF16', 2, [0x3f80, 0x3eab, 0x3eaa, 0x4049, 0xc2f7, 0x8000, 0x7f80, 0x7fc0]);
    expect(got.slice(0, 5)).toEqual([1, 0.333984375, 0.33203125, 3.140625, -123.5]);
    expect(Object.is(got[5], -0)).toBe(true);
    expect(got[6]).toBe(Infinity);
    expect(got[7]).toBeNaN();
  });

  it('decodes F32 and rounds F64 to float32', () => {
    expect(decode('F32', 4, [0x3f800000, 0xbfc00000, 0x7f800000])).toEqual([1, -1.5, Infinity]);
    const f64 = new Uint8Array(new Float64Array([0.1, -2.5, 1e300, 5e-324]).buffer);
    expect(Array.from(decodeToFloat32(f64, 'F64', 4))).toEqual([Math.fround(0.1), -2.5, Infinity, 0]);
  });

  it('decodes I64 with its sign and high word', () => {
    const got = decode('I64', 8, [-1n, 3n, 2n ** 40n + 3n, -(2n ** 40n), 2n ** 62n, -(2n ** 63n)]);
    expect(got).toEqual([-1, 3, Math.fround(2 ** 40 + 3), -(2 ** 40), 2 ** 62, -(2 ** 63)]);
  });

  it('decodes the smaller integer types and BOOL', () => {
    expect(decode('I32', 4, [0xffffffff, 2 ** 31, 7])).toEqual([-1, -(2 ** 31), 7]);
    expect(decode('I16', 2, [0x8000, 0x7fff, 0xfffe])).toEqual([-32768, 32767, -2]);
    expect(decode('I8', 1, [0x80, 0x7f, 0xff])).toEqual([-128, 127, -1]);
    expect(decode('U8', 1, [0, 128, 255])).toEqual([0, 128, 255]);
    expect(decode('BOOL', 1, [0, 1, 2])).toEqual([0, 1, 1]);
  });

  it('reads from a view that does not start at its buffer start', () => {
    const bytes = new Uint8Array(9);
    new DataView(bytes.buffer).setFloat32(1, 2.5, true);
    new DataView(bytes.buffer).setFloat32(5, -4, true);
    expect(Array.from(decodeToFloat32(bytes.subarray(1), 'F32', 2))).toEqual([2.5, -4]);
  });
});

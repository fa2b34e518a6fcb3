// Element types shared by both formats, named as safetensors names them, and their decoding from
// little-endian bytes to float32.

/** Bytes per element of each dtype this reader decodes. */
const DTYPE_BYTES = new Map<string, number>([
  ['F64', 8],
  ['F32', 4],
  ['F16', 2],
  ['BF16', 2],
  ['I64', 8],
  ['I32', 4],
  ['I16', 2],
  ['I8', 1],
  ['U8', 1],
  ['BOOL', 1],
]);

export const SUPPORTED_DTYPES = [...DTYPE_BYTES.keys()];

/** Bytes per element, or undefined for a dtype this reader does not decode. */
export function dtypeBytes(dtype: string): number | undefined {
  return DTYPE_BYTES.get(dtype);
}

/** True for a list of non-negative safe integers (a shape or a stride). */
export function isDims(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Number of elements of a shape (1 for a scalar's []). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// float16 bit patterns -> float32 values, built on first use (256 KiB).
let halfTable: Float32Array | undefined;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function halfTableOnce(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/**
 * Decodes `count` little-endian elements of `dtype` from `bytes` (which holds exactly or at
 * least count x dtypeBytes(dtype) bytes) to float32. The caller has checked the dtype.
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: string, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F16': {
      const table = halfTableOnce();
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(i * 2, true)];
      break;
    }
    case 'BF16': {
      // bfloat16 is the high half of a float32: write its bits over the output's.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      break;
    }
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'I64':
      // high word signed, low word unsigned: exact up to 2^53, then rounded to float32 anyway
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 8 + 4, true) * 2 ** 32 + view.getUint32(i * 8, true);
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    case 'U8':
      for (let i = 0; i < count; i++) out[i] = bytes[i];
      break;
    case 'BOOL':
      for (let i = 0; i < count; i++) out[i] = bytes[i] ? 1 : 0;
      break;
    default:
      throw new Error(`decodeToFloat32: unchecked dtype ${dtype}`);
  }
  return out;
}

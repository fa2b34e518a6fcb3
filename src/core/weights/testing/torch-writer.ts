// Test inputs in torch.save's layout: a protocol-2 pickle written the way Python's pickler writes
// a state dict (GLOBAL, BINPUT after each object, TUPLE1-3, SETITEMS), zipped with the storages.

import { writeZip } from './zip-writer.ts';

/** A tensor as torch pickles it: a view of storage `storage` (a key under data/). */
export class TestTensor {
  constructor(
    readonly storage: string,
    readonly shape: number[],
    readonly options: { storageClass?: string; offset?: number; stride?: number[]; numel?: number; parameter?: boolean } = {},
  ) {}
}

/** A Python list (arrays stand for tuples). */
export class TestList {
  constructor(readonly items: PickleValue[]) {}
}

/** Maps are written as collections.OrderedDict, plain objects as dict, arrays as tuples. */
export type PickleValue = null | boolean | number | string | PickleValue[] | TestList | TestTensor | Map<PickleValue, PickleValue> | { [key: string]: PickleValue };

/** Opcode bytes, for tests that assemble pickles by hand. */
export const OP = {
  PROTO: 0x80, FRAME: 0x95, STOP: 0x2e, MARK: 0x28, EMPTY_DICT: 0x7d, EMPTY_LIST: 0x5d, EMPTY_TUPLE: 0x29,
  TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, BINPUT: 0x71, LONG_BINPUT: 0x72, MEMOIZE: 0x94,
  BINGET: 0x68, LONG_BINGET: 0x6a, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, BINFLOAT: 0x47,
  BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43, NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89, SETITEM: 0x73, SETITEMS: 0x75,
  APPEND: 0x61, APPENDS: 0x65, GLOBAL: 0x63, STACK_GLOBAL: 0x93, REDUCE: 0x52, BINPERSID: 0x51, BUILD: 0x62,
} as const;

/** Byte-level pickle assembly; `value` writes a whole PickleValue as Python would. */
export class PickleBuilder {
  readonly bytes: number[] = [];
  private memo = 0;

  op(...codes: number[]) {
    this.bytes.push(...codes);
    return this;
  }
  u32(v: number) {
    return this.op(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  put() {
    return this.memo < 256 ? this.op(OP.BINPUT, this.memo++) : this.op(OP.LONG_BINPUT).u32(this.memo++);
  }
  str(s: string) {
    const utf8 = new TextEncoder().encode(s);
    if (utf8.length < 256) this.op(OP.SHORT_BINUNICODE, utf8.length);
    else this.op(OP.BINUNICODE).u32(utf8.length);
    return this.op(...utf8).put();
  }
  int(v: number) {
    if (v >= 0 && v < 256) return this.op(OP.BININT1, v);
    if (v >= 0 && v < 65536) return this.op(OP.BININT2, v & 0xff, v >> 8);
    if (v >= -(2 ** 31) && v < 2 ** 31) return this.op(OP.BININT).u32(v);
    // LONG1: the fewest little-endian two's complement bytes whose top bit is the sign
    const digits: number[] = [];
    let x = BigInt(v);
    const done = () => digits.length > 0 && x === (v < 0 ? -1n : 0n) && (digits[digits.length - 1] >= 0x80) === v < 0;
    while (!done()) {
      digits.push(Number(x & 0xffn));
      x >>= 8n;
    }
    return this.op(OP.LONG1, digits.length, ...digits);
  }
  float(v: number) {
    const b = new DataView(new ArrayBuffer(8));
    b.setFloat64(0, v, false);
    return this.op(OP.BINFLOAT, ...new Uint8Array(b.buffer));
  }
  global(module: string, name: string) {
    return this.op(OP.GLOBAL, ...new TextEncoder().encode(`${module}\n${name}\n`)).put();
  }
  tuple(items: PickleValue[]) {
    if (items.length === 0) return this.op(OP.EMPTY_TUPLE);
    if (items.length > 3) this.op(OP.MARK);
    for (const item of items) this.value(item);
    return this.op(items.length > 3 ? OP.TUPLE : OP.TUPLE1 + items.length - 1).put();
  }
  value(v: PickleValue): this {
    if (v === null) return this.op(OP.NONE);
    if (typeof v === 'boolean') return this.op(v ? OP.NEWTRUE : OP.NEWFALSE);
    if (typeof v === 'number') return Number.isInteger(v) ? this.int(v) : this.float(v);
    if (typeof v === 'string') return this.str(v);
    if (Array.isArray(v)) return this.tuple(v);
    if (v instanceof TestList) {
      this.op(OP.EMPTY_LIST).put().op(OP.MARK);
      for (const item of v.items) this.value(item);
      return this.op(OP.APPENDS);
    }
    if (v instanceof TestTensor) return this.tensor(v);
    if (v instanceof Map) this.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE).put();
    else this.op(OP.EMPTY_DICT).put();
    const entries = v instanceof Map ? [...v] : Object.entries(v);
    if (entries.length === 0) return this;
    this.op(OP.MARK);
    for (const [key, item] of entries) this.value(key).value(item);
    return this.op(OP.SETITEMS);
  }
  tensor(t: TestTensor) {
    const { storageClass = 'FloatStorage', offset = 0, parameter = false } = t.options;
    const stride = t.options.stride ?? t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const numel = t.options.numel ?? t.shape.reduce((a, b) => a * b, 1) + offset;
    if (parameter) this.global('torch._utils', '_rebuild_parameter');
    this.global('torch._utils', '_rebuild_tensor_v2').op(OP.MARK);
    this.op(OP.MARK).str('storage').global('torch', storageClass).str(t.storage).str('cpu').int(numel).op(OP.TUPLE).put().op(OP.BINPERSID);
    this.int(offset).tuple(t.shape).tuple(stride).op(OP.NEWFALSE);
    this.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE).put();
    this.op(OP.TUPLE).put().op(OP.REDUCE).put();
    if (parameter) this.op(OP.NEWTRUE).global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE).put().op(OP.TUPLE3, OP.REDUCE).put();
    return this;
  }
  /** The finished pickle: PROTO 2, the value, STOP. */
  static pickle(v: PickleValue): Uint8Array<ArrayBuffer> {
    const b = new PickleBuilder().op(OP.PROTO, 2).value(v).op(OP.STOP);
    return new Uint8Array(b.bytes);
  }
}

/** A torch.save zip around a data.pkl and its storages (key -> raw little-endian bytes). */
export function writeTorchZip(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: { archive?: string; zip64?: boolean; method?: number } = {},
): Uint8Array<ArrayBuffer> {
  const { archive = 'archive', zip64 = false, method = 0 } = options;
  const text = new TextEncoder();
  return writeZip(
    [
      { name: `${archive}/data.pkl`, data: pickle, method },
      { name: `${archive}/byteorder`, data: text.encode('little') },
      ...Object.entries(storages).map(([key, data]) => ({ name: `${archive}/data/${key}`, data, method })),
      { name: `${archive}/version`, data: text.encode('3\n') },
    ],
    { zip64, align: 64 },
  );
}

/** Float32 values as little-endian bytes (the test hosts are little-endian). */
export const f32Bytes = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

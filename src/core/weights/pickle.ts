// A safe unpickler for torch.save's data.pkl (pickle protocol 2, plus FRAME/MEMOIZE/STACK_GLOBAL
// from protocol 4). It implements only the opcodes a state dict needs and calls nothing but an
// allow-list of tensor-rebuilding functions, each reimplemented here as a pure data constructor.
// The result is a tree of Maps (dict and OrderedDict), arrays (list and tuple), numbers, strings,
// Uint8Arrays (bytes), null, booleans and TensorRefs.

import { isDims } from './dtypes.ts';

/** A storage named by a persistent id: entry `data/<key>` of the archive, `numel` elements of `dtype`. */
export class StorageRef {
  constructor(
    readonly dtype: string,
    readonly key: string,
    readonly numel: number,
  ) {}
}

/** A tensor as a view of a storage: `shape` with `stride` (in elements) starting at element `offset`. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** A module attribute that passed the allow-list; `call` is set for the callable ones. */
class Global {
  constructor(
    readonly qualified: string,
    readonly storageDtype?: string,
    readonly call?: (args: unknown[], fail: Fail) => unknown,
  ) {}
}

type Fail = (reason: string) => never;

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** torch dtype attributes a checkpoint may mention as plain values (never called). */
const TORCH_DTYPES = ['float32', 'float', 'float16', 'half', 'bfloat16', 'float64', 'double', 'int64', 'long', 'int32', 'int', 'int16', 'int8', 'uint8', 'bool'];

/** OrderedDict() or OrderedDict([(key, value), ...]). */
function orderedDict(args: unknown[], fail: Fail): Map<unknown, unknown> {
  const items = args[0] ?? [];
  if (!Array.isArray(items) || !items.every((kv) => Array.isArray(kv) && kv.length === 2)) fail('OrderedDict called with something other than (key, value) pairs');
  return new Map(items as [unknown, unknown][]);
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensor(args: unknown[], fail: Fail): TensorRef {
  const [storage, offset, shape, stride] = args;
  if (!(storage instanceof StorageRef)) return fail('_rebuild_tensor_v2 called without a storage');
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) return fail('_rebuild_tensor_v2 called with a bad storage offset');
  if (!isDims(shape) || !isDims(stride) || shape.length !== stride.length) return fail('_rebuild_tensor_v2 called with a bad size or stride');
  return new TensorRef(storage, offset as number, shape, stride);
}

/** _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its data here. */
function rebuildParameter(args: unknown[], fail: Fail): TensorRef {
  if (!(args[0] instanceof TensorRef)) return fail('_rebuild_parameter called without a tensor');
  return args[0];
}

function allowed(module: string, name: string): Global | undefined {
  const q = `${module}.${name}`;
  if (q === 'collections.OrderedDict') return new Global(q, undefined, orderedDict);
  if (q === 'torch._utils._rebuild_tensor_v2') return new Global(q, undefined, rebuildTensor);
  if (q === 'torch._utils._rebuild_parameter') return new Global(q, undefined, rebuildParameter);
  if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return new Global(q, STORAGE_DTYPES[name]);
  if (module === 'torch' && TORCH_DTYPES.includes(name)) return new Global(q);
  return undefined;
}

const refuse = (what: string): string => `the pickle asks to call ${what}; only tensor rebuilding is allowed, so nothing was executed`;

/** `('storage', StorageClass, key, location, numel)` -> StorageRef */
function storageFromPid(pid: unknown, fail: Fail): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length !== 5) return fail('a persistent id is not a (storage, type, key, location, numel) tuple');
  const [, type, key, , count] = pid;
  if (!(type instanceof Global) || type.storageDtype === undefined) return fail(`a persistent id names ${type instanceof Global ? type.qualified : 'something'} as its storage type`);
  if (typeof key !== 'string' || !Number.isSafeInteger(count) || count < 0) return fail('a persistent id has a bad storage key or size');
  return new StorageRef(type.storageDtype, key, count);
}

const latin1 = (b: Uint8Array): string => Array.from(b, (c) => String.fromCharCode(c)).join('');
const utf8 = new TextDecoder();

/** The unpickler's state: the byte cursor, the stack (with MARK's saved stacks), the memo. */
class Machine {
  readonly view: DataView;
  readonly storages = new Map<string, StorageRef>();
  readonly memo = new Map<number, unknown>();
  readonly metastack: unknown[][] = [];
  stack: unknown[] = [];
  pos = 0;
  /** Where the current opcode starts, for messages. */
  at = 0;
  stopped = false;
  result: unknown = undefined;

  constructor(
    readonly bytes: Uint8Array,
    readonly fail: Fail,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  malformed(what: string): never {
    return this.fail(`malformed pickle: ${what}`);
  }
  need(n: number): number {
    if (this.pos + n > this.bytes.length) this.malformed(`it ends inside the opcode at byte ${this.at}`);
    const p = this.pos;
    this.pos += n;
    return p;
  }
  u8 = (): number => this.bytes[this.need(1)];
  u32 = (): number => this.view.getUint32(this.need(4), true);
  take(n: number): Uint8Array {
    const p = this.need(n);
    return this.bytes.subarray(p, p + n);
  }
  push(value: unknown): void {
    this.stack.push(value);
  }
  pop(): unknown {
    if (this.stack.length === 0) this.malformed(`stack underflow at byte ${this.at}`);
    return this.stack.pop();
  }
  top(): unknown {
    if (this.stack.length === 0) this.malformed(`stack underflow at byte ${this.at}`);
    return this.stack[this.stack.length - 1];
  }
  /** The items pushed since the last MARK; the stack before it becomes current again. */
  popMark(): unknown[] {
    const items = this.stack;
    const outer = this.metastack.pop();
    if (!outer) return this.malformed(`no MARK before byte ${this.at}`);
    this.stack = outer;
    return items;
  }
  get(index: number): void {
    if (!this.memo.has(index)) this.malformed(`memo ${index} is read before it is written`);
    this.push(this.memo.get(index));
  }
  put(index: number): void {
    this.memo.set(index, this.top());
  }
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.malformed(`GLOBAL at byte ${this.at} has no newline`);
    return latin1(this.take(end - this.pos + 1).subarray(0, -1));
  }
  global(module: unknown, name: unknown): void {
    if (typeof module !== 'string' || typeof name !== 'string') this.malformed(`STACK_GLOBAL at byte ${this.at} without two strings`);
    const g = allowed(module as string, name as string);
    if (!g) this.fail(refuse(`${module}.${name}`));
    this.push(g);
  }
  setItems(dict: unknown, items: unknown[]): void {
    if (!(dict instanceof Map)) this.malformed(`SETITEM(S) on something other than a dict at byte ${this.at}`);
    if (items.length % 2) this.malformed(`SETITEMS with an odd number of items at byte ${this.at}`);
    for (let i = 0; i < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  }
  append(list: unknown, items: unknown[]): void {
    if (!Array.isArray(list)) this.malformed(`APPEND(S) on something other than a list at byte ${this.at}`);
    for (const item of items) (list as unknown[]).push(item);
  }
}

type Op = (m: Machine, op: number) => void;

/** LONG1 n, then n bytes of little-endian two's complement. */
function long1(m: Machine): void {
  const digits = m.take(m.u8());
  let value = 0;
  for (let i = digits.length - 1; i >= 0; i--) value = value * 256 + digits[i];
  if (digits.length && digits[digits.length - 1] & 0x80) value -= 256 ** digits.length;
  m.push(value);
}

/** REDUCE callable args: only an allow-listed Global may be called. */
function reduce(m: Machine): void {
  const args = m.pop();
  const callable = m.pop();
  if (!(callable instanceof Global) || !callable.call) m.fail(refuse(callable instanceof Global ? callable.qualified : 'a non-function'));
  if (!Array.isArray(args)) m.malformed(`REDUCE at byte ${m.at} without an argument tuple`);
  m.push((callable as Global).call!(args as unknown[], m.fail));
}

/** BINPERSID: a storage, shared by every tensor that names its key. */
function persistentId(m: Machine): void {
  const ref = storageFromPid(m.pop(), m.fail);
  const known = m.storages.get(ref.key);
  if (known && (known.dtype !== ref.dtype || known.numel !== ref.numel)) m.fail(`storage '${ref.key}' is named with two types or sizes`);
  if (!known) m.storages.set(ref.key, ref);
  m.push(known ?? ref);
}

/** The opcodes of a state dict, by byte. Anything else is refused. */
const OPS = new Map<number, Op>([
  [0x80, (m) => void m.need(1)], // PROTO n
  [0x95, (m) => void m.need(8)], // FRAME length: the framed opcodes follow inline
  [0x7d, (m) => m.push(new Map())], // EMPTY_DICT
  [0x5d, (m) => m.push([])], // EMPTY_LIST
  [0x29, (m) => m.push([])], // EMPTY_TUPLE
  [0x28, (m) => (m.metastack.push(m.stack), (m.stack = []))], // MARK
  [0x74, (m) => { const items = m.popMark(); m.push(items); }], // TUPLE
  ...[0x85, 0x86, 0x87].map((code): [number, Op] => [code, (m, op) => {
    // TUPLE1, TUPLE2, TUPLE3
    const n = op - 0x84;
    if (m.stack.length < n) m.malformed(`stack underflow at byte ${m.at}`);
    m.push(m.stack.splice(m.stack.length - n, n));
  }]),
  [0x71, (m) => m.put(m.u8())], // BINPUT i
  [0x72, (m) => m.put(m.u32())], // LONG_BINPUT i
  [0x94, (m) => m.put(m.memo.size)], // MEMOIZE
  [0x68, (m) => m.get(m.u8())], // BINGET i
  [0x6a, (m) => m.get(m.u32())], // LONG_BINGET i
  [0x4a, (m) => m.push(m.view.getInt32(m.need(4), true))], // BININT: 4 bytes signed
  [0x4b, (m) => m.push(m.u8())], // BININT1
  [0x4d, (m) => m.push(m.view.getUint16(m.need(2), true))], // BININT2
  [0x8a, long1], // LONG1
  [0x47, (m) => m.push(m.view.getFloat64(m.need(8), false))], // BINFLOAT: 8 bytes big-endian
  [0x58, (m) => m.push(utf8.decode(m.take(m.u32())))], // BINUNICODE
  [0x8c, (m) => m.push(utf8.decode(m.take(m.u8())))], // SHORT_BINUNICODE
  [0x54, (m) => m.push(latin1(m.take(m.u32())))], // BINSTRING (Python 2 str)
  [0x55, (m) => m.push(latin1(m.take(m.u8())))], // SHORT_BINSTRING
  [0x42, (m) => m.push(m.take(m.u32()).slice())], // BINBYTES
  [0x43, (m) => m.push(m.take(m.u8()).slice())], // SHORT_BINBYTES
  [0x4e, (m) => m.push(null)], // NONE
  [0x88, (m) => m.push(true)], // NEWTRUE
  [0x89, (m) => m.push(false)], // NEWFALSE
  [0x73, (m) => { const value = m.pop(); const key = m.pop(); m.setItems(m.top(), [key, value]); }], // SETITEM
  [0x75, (m) => { const items = m.popMark(); m.setItems(m.top(), items); }], // SETITEMS
  [0x61, (m) => { const value = m.pop(); m.append(m.top(), [value]); }], // APPEND
  [0x65, (m) => { const items = m.popMark(); m.append(m.top(), items); }], // APPENDS
  [0x63, (m) => { const module = m.line(); m.global(module, m.line()); }], // GLOBAL "module\nname\n"
  [0x93, (m) => { const name = m.pop(); m.global(m.pop(), name); }], // STACK_GLOBAL
  [0x52, reduce], // REDUCE
  [0x51, persistentId], // BINPERSID
  [0x62, (m) => {
    // BUILD: only a dict's attributes (a state dict's _metadata), which carry no tensors
    m.pop();
    if (!(m.top() instanceof Map)) m.fail(`the pickle asks to BUILD an object at byte ${m.at}; only dicts are allowed`);
  }],
  [0x2e, (m) => ((m.result = m.pop()), (m.stopped = true))], // STOP
]);

/** Reads `bytes` (a whole data.pkl) to its value; every malformed or disallowed input calls `fail`. */
export function unpickle(bytes: Uint8Array, fail: Fail): unknown {
  const m = new Machine(bytes, fail);
  while (m.pos < bytes.length) {
    m.at = m.pos;
    const op = m.u8();
    const run = OPS.get(op);
    if (!run) {
      const shown = op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : '';
      fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${shown} at byte ${m.at}; only the opcodes of a state dict are read`);
    }
    run(m, op);
    if (m.stopped) return m.result;
  }
  return m.malformed('it ends without STOP');
}

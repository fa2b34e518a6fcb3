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

/** Reads `bytes` (a whole data.pkl) to its value; every malformed or disallowed input calls `fail`. */
export function unpickle(bytes: Uint8Array, fail: Fail): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder();
  const storages = new Map<string, StorageRef>();
  const memo = new Map<number, unknown>();
  const metastack: unknown[][] = [];
  let stack: unknown[] = [];
  let pos = 0;
  let at = 0; // where the current opcode starts, for messages

  const need = (n: number): number => {
    if (pos + n > bytes.length) fail(`malformed pickle: it ends inside the opcode at byte ${at}`);
    const p = pos;
    pos += n;
    return p;
  };
  const u8 = () => bytes[need(1)];
  const u32 = () => view.getUint32(need(4), true);
  const take = (n: number) => {
    const p = need(n);
    return bytes.subarray(p, p + n);
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail(`malformed pickle: stack underflow at byte ${at}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`malformed pickle: stack underflow at byte ${at}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const outer = metastack.pop();
    if (!outer) return fail(`malformed pickle: no MARK before byte ${at}`);
    stack = outer;
    return items;
  };
  const get = (index: number) => {
    if (!memo.has(index)) fail(`malformed pickle: memo ${index} is read before it is written`);
    stack.push(memo.get(index));
  };
  const put = (index: number) => memo.set(index, top());
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`malformed pickle: GLOBAL at byte ${at} has no newline`);
    return latin1(take(end - pos + 1).subarray(0, -1));
  };
  const global = (module: unknown, name: unknown) => {
    if (typeof module !== 'string' || typeof name !== 'string') fail(`malformed pickle: STACK_GLOBAL at byte ${at} without two strings`);
    const g = allowed(module as string, name as string);
    if (!g) fail(refuse(`${module}.${name}`));
    stack.push(g);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) fail(`malformed pickle: SETITEM(S) on something other than a dict at byte ${at}`);
    if (items.length % 2) fail(`malformed pickle: SETITEMS with an odd number of items at byte ${at}`);
    for (let i = 0; i < items.length; i += 2) (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const append = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list)) fail(`malformed pickle: APPEND(S) on something other than a list at byte ${at}`);
    for (const item of items) (list as unknown[]).push(item);
  };

  while (pos < bytes.length) {
    at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO n
        need(1);
        break;
      case 0x95: // FRAME length: the framed opcodes follow inline
        need(8);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x74: {
        // TUPLE
        const items = popMark(); // before naming `stack`: popMark replaces it
        stack.push(items);
        break;
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        if (stack.length < n) fail(`malformed pickle: stack underflow at byte ${at}`);
        stack.push(stack.splice(stack.length - n, n));
        break;
      }
      case 0x71: // BINPUT i
        put(u8());
        break;
      case 0x72: // LONG_BINPUT i
        put(u32());
        break;
      case 0x94: // MEMOIZE
        put(memo.size);
        break;
      case 0x68: // BINGET i
        get(u8());
        break;
      case 0x6a: // LONG_BINGET i
        get(u32());
        break;
      case 0x4a: // BININT: 4 bytes signed
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(view.getUint16(need(2), true));
        break;
      case 0x8a: {
        // LONG1 n, then n bytes of little-endian two's complement
        const digits = take(u8());
        let value = 0;
        for (let i = digits.length - 1; i >= 0; i--) value = value * 256 + digits[i];
        if (digits.length && digits[digits.length - 1] & 0x80) value -= 256 ** digits.length;
        stack.push(value);
        break;
      }
      case 0x47: // BINFLOAT: 8 bytes big-endian
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(u8())));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(latin1(take(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const value = pop();
        append(top(), [value]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        global(module, line());
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        global(pop(), name);
        break;
      }
      case 0x52: {
        // REDUCE callable args
        const args = pop();
        const callable = pop();
        if (!(callable instanceof Global) || !callable.call) fail(refuse(callable instanceof Global ? callable.qualified : 'a non-function'));
        if (!Array.isArray(args)) fail(`malformed pickle: REDUCE at byte ${at} without an argument tuple`);
        stack.push((callable as Global).call!(args as unknown[], fail));
        break;
      }
      case 0x51: {
        // BINPERSID: a storage, shared by every tensor that names its key
        const ref = storageFromPid(pop(), fail);
        const known = storages.get(ref.key);
        if (known && (known.dtype !== ref.dtype || known.numel !== ref.numel)) fail(`storage '${ref.key}' is named with two types or sizes`);
        if (!known) storages.set(ref.key, ref);
        stack.push(known ?? ref);
        break;
      }
      case 0x62: {
        // BUILD: only a dict's attributes (a state dict's _metadata), which carry no tensors
        pop();
        if (!(top() instanceof Map)) fail(`the pickle asks to BUILD an object at byte ${at}; only dicts are allowed`);
        break;
      }
      case 0x2e: // STOP
        return pop();
      default: {
        const shown = op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : '';
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${shown} at byte ${at}; only the opcodes of a state dict are read`);
      }
    }
  }
  return fail('malformed pickle: it ends without STOP');
}

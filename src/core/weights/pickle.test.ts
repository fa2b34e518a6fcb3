import { describe, expect, it } from 'vitest';
import { StorageRef, TensorRef, unpickle } from './pickle.ts';
import { OP, PickleBuilder, TestList, TestTensor } from './testing/torch-writer.ts';

const fail = (reason: string): never => {
  throw new Error(reason);
};
const load = (bytes: number[] | Uint8Array) => unpickle(Uint8Array.from(bytes), fail);
const text = (s: string) => [...new TextEncoder().encode(s)];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

describe('unpickle', () => {
  it('reads dicts, OrderedDicts, lists, tuples and scalars as Python writes them', () => {
    const value = new Map<never, never>([
      ['epoch', 12],
      ['lr', 0.001],
      ['big', 2 ** 40],
      ['negative', -(2 ** 40) - 7],
      ['int32', -5],
      ['u16', 40000],
      ['name', 'vit_small'],
      ['long', 'x'.repeat(300)],
      ['flags', [true, false, null] as never],
      ['list', new TestList([1, 2, 3]) as never],
      ['nested', { a: 1, b: [] } as never],
    ] as never);
    const got = load(PickleBuilder.pickle(value)) as Map<string, unknown>;
    expect(got).toBeInstanceOf(Map);
    expect([...got.keys()]).toEqual([...value.keys()]);
    expect(got.get('epoch')).toBe(12);
    expect(got.get('lr')).toBe(0.001);
    expect(got.get('big')).toBe(2 ** 40);
    expect(got.get('negative')).toBe(-(2 ** 40) - 7);
    expect(got.get('int32')).toBe(-5);
    expect(got.get('u16')).toBe(40000);
    expect(got.get('long')).toBe('x'.repeat(300));
    expect(got.get('flags')).toEqual([true, false, null]);
    expect(got.get('list')).toEqual([1, 2, 3]);
    expect(got.get('nested')).toEqual(new Map<string, unknown>([['a', 1], ['b', []]]));
  });

  it('rebuilds tensors, parameters and shared storages as descriptors', () => {
    const got = load(
      PickleBuilder.pickle(
        new Map([
          ['w', new TestTensor('0', [2, 3], { storageClass: 'HalfStorage' })],
          ['p', new TestTensor('1', [4], { parameter: true, offset: 2, numel: 6 })],
          ['wt', new TestTensor('0', [3, 2], { storageClass: 'HalfStorage', stride: [1, 3] })],
        ]),
      ),
    ) as Map<string, TensorRef>;
    const w = got.get('w')!;
    expect(w).toBeInstanceOf(TensorRef);
    expect(w).toMatchObject({ offset: 0, shape: [2, 3], stride: [3, 1], storage: { dtype: 'F16', key: '0', numel: 6 } });
    expect(got.get('p')).toMatchObject({ offset: 2, shape: [4], stride: [1], storage: { dtype: 'F32', key: '1', numel: 6 } });
    expect(got.get('wt')!.storage).toBe(w.storage); // one StorageRef per key
    expect(w.storage).toBeInstanceOf(StorageRef);
  });

  it('reads protocol 4: FRAME, STACK_GLOBAL, MEMOIZE, LONG_BINGET, and the byte-string opcodes', () => {
    const bytes = [
      OP.PROTO, 4, OP.FRAME, ...u32(60), 0, 0, 0, 0,
      OP.SHORT_BINUNICODE, 11, ...text('collections'), OP.MEMOIZE,
      OP.SHORT_BINUNICODE, 11, ...text('OrderedDict'), OP.MEMOIZE,
      OP.STACK_GLOBAL, OP.MEMOIZE, OP.EMPTY_TUPLE, OP.REDUCE, OP.MEMOIZE,
      OP.SHORT_BINSTRING, 1, ...text('a'), OP.BINSTRING, ...u32(2), 0xe9, 0x74, OP.SETITEM,
      OP.SHORT_BINUNICODE, 1, ...text('b'), OP.SHORT_BINBYTES, 2, 1, 2, OP.SETITEM,
      OP.SHORT_BINUNICODE, 1, ...text('c'), OP.BINBYTES, ...u32(1), 9, OP.SETITEM,
      OP.SHORT_BINUNICODE, 1, ...text('d'), OP.LONG_BINGET, ...u32(0), OP.SETITEM,
      OP.SHORT_BINUNICODE, 1, ...text('e'), OP.BINGET, 1, OP.LONG_BINPUT, ...u32(9), OP.SETITEM,
      OP.SHORT_BINUNICODE, 1, ...text('f'), OP.EMPTY_LIST, OP.BININT1, 5, OP.APPEND, OP.SETITEM,
      OP.SHORT_BINUNICODE, 1, ...text('g'), OP.LONG1, 0, OP.SETITEM,
      OP.SHORT_BINUNICODE, 1, ...text('h'), OP.LONG1, 2, 0x00, 0x80, OP.SETITEM,
      OP.STOP,
    ];
    const got = load(bytes) as Map<string, unknown>;
    expect(Object.fromEntries(got)).toEqual({
      a: '\u00e9t', b: new Uint8Array([1, 2]), c: new Uint8Array([9]), d: 'collections', e: 'OrderedDict', f: [5], g: 0, h: -32768,
    });
  });

  it("ignores BUILD on a dict (a state dict's _metadata attribute)", () => {
    const bytes = [OP.PROTO, 2, ...PickleBuilder.pickle(new Map([['k', 1]])).slice(2, -1), OP.EMPTY_DICT, OP.BUILD, OP.STOP];
    expect(load(bytes)).toEqual(new Map([['k', 1]]));
  });

  it('handles a list that contains itself without looping', () => {
    const got = load([OP.PROTO, 2, OP.EMPTY_LIST, OP.BINPUT, 0, OP.BINGET, 0, OP.APPEND, OP.STOP]) as unknown[];
    expect(got[0]).toBe(got);
  });
});

describe('unpickle refuses', () => {
  const globalCall = (module: string, name: string) => [OP.PROTO, 2, OP.GLOBAL, ...text(`${module}\n${name}\n`), OP.SHORT_BINUNICODE, 2, ...text('ls'), OP.TUPLE1, OP.REDUCE, OP.STOP];

  it('any global outside the allow-list, before anything could run', () => {
    expect(() => load(globalCall('posix', 'system'))).toThrow('the pickle asks to call posix.system; only tensor rebuilding is allowed, so nothing was executed');
    expect(() => load(globalCall('builtins', 'eval'))).toThrow('the pickle asks to call builtins.eval;');
    expect(() => load(globalCall('__builtin__', 'exec'))).toThrow('the pickle asks to call __builtin__.exec;');
    expect(() => load(globalCall('torch', 'load'))).toThrow('torch.load');
    const stackGlobal = [OP.PROTO, 4, OP.SHORT_BINUNICODE, 2, ...text('os'), OP.SHORT_BINUNICODE, 6, ...text('system'), OP.STACK_GLOBAL, OP.STOP];
    expect(() => load(stackGlobal)).toThrow('the pickle asks to call os.system;');
  });

  it('REDUCE on anything but an allowed function', () => {
    expect(() => load(globalCall('torch', 'FloatStorage'))).toThrow('the pickle asks to call torch.FloatStorage; only tensor rebuilding is allowed');
    expect(() => load(globalCall('torch', 'float16'))).toThrow('asks to call torch.float16');
    expect(() => load([OP.PROTO, 2, OP.EMPTY_DICT, OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP])).toThrow('asks to call a non-function');
  });

  it('allowed functions called with the wrong arguments', () => {
    const rebuild = [OP.GLOBAL, ...text('torch._utils\n_rebuild_tensor_v2\n')];
    expect(() => load([OP.PROTO, 2, ...rebuild, OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP])).toThrow('_rebuild_tensor_v2 called without a storage');
    expect(() => load([OP.PROTO, 2, OP.GLOBAL, ...text('torch._utils\n_rebuild_parameter\n'), OP.NONE, OP.TUPLE1, OP.REDUCE, OP.STOP])).toThrow('_rebuild_parameter called without a tensor');
    expect(() => load([OP.PROTO, 2, OP.GLOBAL, ...text('collections\nOrderedDict\n'), OP.BININT1, 1, OP.TUPLE1, OP.REDUCE, OP.STOP])).toThrow('OrderedDict called with something');
    const pid = [OP.MARK, OP.SHORT_BINUNICODE, 7, ...text('storage'), OP.GLOBAL, ...text('torch\nfloat32\n'), OP.SHORT_BINUNICODE, 1, ...text('0'), OP.NONE, OP.BININT1, 1, OP.TUPLE, OP.BINPERSID];
    expect(() => load([OP.PROTO, 2, ...pid, OP.STOP])).toThrow('a persistent id names torch.float32 as its storage type');
    expect(() => load([OP.PROTO, 2, OP.NONE, OP.BINPERSID, OP.STOP])).toThrow('a persistent id is not a (storage, type, key, location, numel) tuple');
  });

  it('BUILD on anything but a dict', () => {
    expect(() => load([OP.PROTO, 2, OP.EMPTY_LIST, OP.EMPTY_DICT, OP.BUILD, OP.STOP])).toThrow(/asks to BUILD an object at byte 4; only dicts/);
  });

  it('unknown opcodes, naming them', () => {
    // NEWOBJ (0x81) and INST ('i') are how pickles build arbitrary objects
    expect(() => load([OP.PROTO, 2, 0x81, OP.STOP])).toThrow("unsupported pickle opcode 0x81 at byte 2; only the opcodes of a state dict are read");
    expect(() => load([OP.PROTO, 2, 0x69, OP.STOP])).toThrow("unsupported pickle opcode 0x69 ('i') at byte 2");
  });

  it('malformed pickles', () => {
    expect(() => load([OP.PROTO, 2, OP.BININT])).toThrow('malformed pickle: it ends inside the opcode at byte 2');
    expect(() => load([OP.PROTO, 2, OP.NONE])).toThrow('malformed pickle: it ends without STOP');
    expect(() => load([OP.PROTO, 2, OP.STOP])).toThrow('malformed pickle: stack underflow at byte 2');
    expect(() => load([OP.PROTO, 2, OP.TUPLE2, OP.STOP])).toThrow('stack underflow at byte 2');
    expect(() => load([OP.PROTO, 2, OP.TUPLE, OP.STOP])).toThrow('malformed pickle: no MARK before byte 2');
    expect(() => load([OP.PROTO, 2, OP.BINGET, 3, OP.STOP])).toThrow('malformed pickle: memo 3 is read before it is written');
    expect(() => load([OP.PROTO, 2, OP.GLOBAL, ...text('torch'), OP.STOP])).toThrow('GLOBAL at byte 2 has no newline');
    expect(() => load([OP.PROTO, 2, OP.EMPTY_LIST, OP.NONE, OP.NONE, OP.SETITEM, OP.STOP])).toThrow('SETITEM(S) on something other than a dict');
    expect(() => load([OP.PROTO, 2, OP.EMPTY_DICT, OP.MARK, OP.NONE, OP.SETITEMS, OP.STOP])).toThrow('SETITEMS with an odd number');
    expect(() => load([OP.PROTO, 2, OP.EMPTY_DICT, OP.NONE, OP.APPEND, OP.STOP])).toThrow('APPEND(S) on something other than a list');
    expect(() => load([OP.PROTO, 2, OP.BININT1, 1, OP.BININT1, 2, OP.STACK_GLOBAL, OP.STOP])).toThrow('STACK_GLOBAL at byte 6 without two strings');
    expect(() => load([OP.PROTO, 2, OP.GLOBAL, ...text('collections\nOrderedDict\n'), OP.NONE, OP.REDUCE, OP.STOP])).toThrow('REDUCE at byte 28 without an argument tuple');
  });
});

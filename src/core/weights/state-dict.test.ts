import { describe, expect, it } from 'vitest';
import { WeightFileError } from './errors.ts';
import { writeSafetensors } from './safetensors.ts';
import { openWeightFile } from './state-dict.ts';
import { PickleBuilder, TestTensor, f32Bytes, writeTorchZip } from './testing/torch-writer.ts';
import { findStateDict, stripSharedPrefixes } from './unwrap.ts';

class T {} // a stand-in tensor for the pure unwrapping functions
const isT = (v: unknown) => v instanceof T;

describe('openWeightFile', () => {
  const safetensors = writeSafetensors([{ name: 'w', shape: [2], data: new Float32Array([1, 2]) }]);
  const torch = writeTorchZip(PickleBuilder.pickle(new Map([['w', new TestTensor('0', [2])]])), { '0': f32Bytes([1, 2]) });

  it('tells the formats apart by their first bytes, not the file name', async () => {
    const a = await openWeightFile(new Blob([safetensors]), 'weights.pt');
    const b = await openWeightFile(new Blob([torch]), 'weights.safetensors');
    expect([a.format, b.format]).toEqual(['safetensors', 'torch']);
    expect(await a.tensors.get('w')!.read()).toEqual(await b.tensors.get('w')!.read());
  });

  it("takes a safetensors file whose header length starts with the byte 0x80 (a pickle's first byte)", async () => {
    // lengthen a name until the padded header is 0x80 + 256 k bytes long
    let bytes = safetensors;
    for (let n = 1; bytes[0] !== 0x80; n++) bytes = writeSafetensors([{ name: 'w'.repeat(n), shape: [1], data: new Float32Array([3]) }]);
    expect((await openWeightFile(new Blob([bytes]), 'x')).format).toBe('safetensors');
  });

  it('sends legacy pickles to the torch reader, and refuses anything else', async () => {
    const legacy = new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
    await expect(openWeightFile(new Blob([legacy]), 'old.pth')).rejects.toThrow(/^old\.pth: this is the legacy torch\.save format/);
    const e = await openWeightFile(new Blob([new TextEncoder().encode('hello, world')]), 'notes.txt').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(WeightFileError);
    expect((e as WeightFileError).reason).toBe(
      "not a weight file this reader knows: neither safetensors ('{' at byte 8) nor a torch.save zip ('PK\\x03\\x04'); it starts 68 65 6c 6c 6f 2c 20 77 6f 72 6c 64",
    );
    await expect(openWeightFile(new Blob([]), 'empty')).rejects.toThrow(/it starts \(empty\)$/);
  });
});

describe('findStateDict', () => {
  it('takes the root when it holds tensors, ignoring its other entries', () => {
    const root = new Map<unknown, unknown>([['w', new T()], ['step', 3]]);
    expect(findStateDict(root, isT)).toEqual({ dict: root, notes: ["ignored non-tensor entries 'step'"] });
  });

  it('follows known wrapper keys, repeatedly, preferring the more specific', () => {
    const sd = new Map([['w', new T()]]);
    const root = new Map<unknown, unknown>([
      ['optimizer', new Map([['state', new Map([[0, new Map([['exp_avg', new T()]])]])]])],
      ['state_dict', new Map([['model', sd]])],
    ]);
    const found = findStateDict(root, isT);
    expect(found.dict).toBe(sd);
    expect(found.notes).toEqual(["nested under 'state_dict'; ignored 'optimizer'", "nested under 'model'"]);
  });

  it('takes the only entry with tensors when no key is known, and says when several have them', () => {
    const ema = new Map([['w', new T()]]);
    expect(findStateDict(new Map<unknown, unknown>([['ema', ema], ['epoch', 1]]), isT)).toMatchObject({ dict: ema });
    const two = new Map([['a', ema], ['b', ema]]);
    expect(findStateDict(two, isT).reason).toBe("could not find the state dict: several entries hold tensors ('a', 'b'); the keys are 'a', 'b'");
  });

  it('ends on cyclic and deeply nested structures', () => {
    const loop = new Map<unknown, unknown>();
    loop.set('self', loop);
    expect(findStateDict(loop, isT).reason).toBe("could not find the state dict: no entry holds tensors; the keys are 'self'");
    const nest = (levels: number) => {
      let node: unknown = new Map([['w', new T()]]);
      for (let i = 0; i < levels; i++) node = new Map([['model', node]]);
      return node;
    };
    expect(findStateDict(nest(8), isT).notes).toHaveLength(8);
    expect(findStateDict(nest(9), isT).reason).toBe('could not find the state dict within 8 levels of nesting');
    expect(findStateDict(nest(20), isT).reason).toBe("could not find the state dict: no entry holds tensors; the keys are 'model'");
  });
});

describe('stripSharedPrefixes', () => {
  const names = (...n: string[]) => new Map(n.map((k) => [k, 0]));

  it('strips module. and backbone. in any order while every name has them', () => {
    expect(stripSharedPrefixes(names('module.a', 'module.b'))).toEqual({ tensors: names('a', 'b'), notes: ["stripped prefix 'module.' from every name"] });
    expect(stripSharedPrefixes(names('backbone.module.a', 'backbone.module.b')).notes).toEqual(["stripped prefix 'backbone.module.' from every name"]);
    expect(stripSharedPrefixes(names('module.module.a')).tensors).toEqual(names('a'));
  });

  it('leaves names alone when one lacks the prefix or would become empty', () => {
    expect(stripSharedPrefixes(names('module.a', 'head.b'))).toEqual({ tensors: names('module.a', 'head.b'), notes: [] });
    expect(stripSharedPrefixes(names('module.a', 'module.')).notes).toEqual([]);
    expect(stripSharedPrefixes(names()).notes).toEqual([]);
  });
});

// Damaged files: random byte changes and truncations of valid files must end in a successful read
// or a WeightFileError with a reason of its own (not a wrapped RangeError/TypeError), never a hang.
import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import { WeightFileError } from './errors.ts';
import { writeSafetensors } from './safetensors.ts';
import { openWeightFile } from './state-dict.ts';
import { PickleBuilder, TestTensor, f32Bytes, writeTorchZip } from './testing/torch-writer.ts';

/** Opens and reads every tensor; returns 'ok' or the WeightFileError's reason, and rethrows anything else. */
async function readAll(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  try {
    const file = await openWeightFile(new Blob([bytes]), 'fuzz');
    for (const t of file.tensors.values()) await t.read();
    return 'ok';
  } catch (e) {
    if (e instanceof WeightFileError) return e.reason;
    throw e;
  }
}

function damage(good: Uint8Array<ArrayBuffer>, rng: Rng): Uint8Array<ArrayBuffer> {
  if (rng.next() < 0.2) return good.slice(0, rng.int(good.length));
  const bad = good.slice();
  const changes = 1 + rng.int(4);
  for (let i = 0; i < changes; i++) bad[rng.int(bad.length)] = rng.int(256);
  return bad;
}

const safetensors = writeSafetensors(
  [
    { name: 'module.a', shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { name: 'module.b', shape: [2], data: new Float32Array([7, 8]) },
  ],
  { format: 'pt' },
);
const torch = writeTorchZip(
  PickleBuilder.pickle({
    model: new Map([
      ['w', new TestTensor('0', [2, 3])],
      ['wt', new TestTensor('0', [3, 2], { stride: [1, 3] })],
      ['b', new TestTensor('1', [2], { storageClass: 'HalfStorage', parameter: true })],
    ]),
    epoch: 4,
  }),
  { '0': f32Bytes([1, 2, 3, 4, 5, 6]), '1': new Uint8Array([0, 0x3c, 0, 0xc0]) },
);

const ITERATIONS = 400;

describe('damaged files', () => {
  for (const [format, good] of [['safetensors', safetensors], ['torch', torch]] as const) {
    it(`${format}: ${ITERATIONS} random damages end in a WeightFileError or a read`, async () => {
      expect(await readAll(good)).toBe('ok');
      const rng = new Rng(format === 'torch' ? 1 : 2);
      const outcomes = new Set<string>();
      for (let i = 0; i < ITERATIONS; i++) outcomes.add((await readAll(damage(good, rng))).replace(/\d+/g, 'N'));
      expect([...outcomes].filter((r) => r.startsWith('could not read the file'))).toEqual([]);
      expect(outcomes.size).toBeGreaterThan(5); // many different reasons, so the damage reached many checks
    });
  }
});

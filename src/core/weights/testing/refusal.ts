// Test helper: the reason a weight file was refused with.
import { expect } from 'vitest';
import { WeightFileError } from '../errors.ts';

/** Awaits `p`, expects it to reject with a WeightFileError, and returns its reason. */
export async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(WeightFileError);
  return (e as WeightFileError).reason;
}

// Reading one byte range of a Blob: the only way the readers touch file contents, so a large
// file is never read whole.

import { WeightFileError } from './errors.ts';

/** Bytes [begin, end) of the blob; `what` names them in the error if the file is shorter. */
export async function readRange(blob: Blob, file: string, begin: number, end: number, what: string): Promise<Uint8Array> {
  if (begin < 0 || end < begin || end > blob.size) {
    throw new WeightFileError(file, `truncated: ${what} needs bytes ${begin}..${end} but the file has ${blob.size}`);
  }
  const bytes = new Uint8Array(await blob.slice(begin, end).arrayBuffer());
  if (bytes.length !== end - begin) {
    throw new WeightFileError(file, `truncated: ${what} needs bytes ${begin}..${end} but only ${bytes.length} could be read`);
  }
  return bytes;
}

/** A little-endian u64 as a number; values past 2^53 come out inexact but still huge, which callers reject. */
export function u64(view: DataView, offset: number): number {
  return view.getUint32(offset + 4, true) * 2 ** 32 + view.getUint32(offset, true);
}

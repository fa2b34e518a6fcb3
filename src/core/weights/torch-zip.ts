// PyTorch checkpoints as torch.save writes them (since torch 1.6): a zip of stored entries
// <archive>/data.pkl (the pickled object, tensors as persistent ids naming storages),
// <archive>/data/<key> (each storage's raw little-endian bytes), <archive>/version, ...
// The pickle is read without executing anything (pickle.ts); tensors are read when asked for.

import { readRange } from './blob-range.ts';
import { decodeToFloat32, dtypeBytes, numel } from './dtypes.ts';
import { WeightFileError, guard } from './errors.ts';
import { StorageRef, TensorRef, unpickle } from './pickle.ts';
import type { TensorEntry, WeightFile } from './types.ts';
import { findStateDict, stripSharedPrefixes } from './unwrap.ts';
import { type ZipEntry, checkStored, readZipDirectory, zipEntryRange } from './zip.ts';

/** data.pkl is small (about 100 bytes a tensor); a larger one is refused rather than read. */
const MAX_PICKLE_BYTES = 256 * 2 ** 20;

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** Legacy torch.save: pickle protocol 2, then LONG1 of the magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PICKLE_PROTO = 0x80;

const startsWith = (head: Uint8Array, magic: number[]) => magic.every((b, i) => head[i] === b);

/** Whether a file's first bytes are a zip's. */
export const startsLikeZip = (head: Uint8Array): boolean => startsWith(head, ZIP_MAGIC);

/** Whether a file's first bytes are a pickle's (the legacy torch.save format, or a bare pickle). */
export const startsLikePickle = (head: Uint8Array): boolean => head[0] === PICKLE_PROTO;

function notZip(head: Uint8Array): string {
  const resave = 'load it with torch.load in a current PyTorch and save it again with torch.save(state_dict, path), or convert it to safetensors';
  if (startsWith(head, LEGACY_MAGIC)) return `this is the legacy torch.save format (before PyTorch 1.6, not a zip), which is not supported; ${resave}`;
  if (startsLikePickle(head)) return `this is a bare pickle, not a torch.save zip; ${resave}`;
  return "not a torch.save checkpoint (it does not start with the zip signature 'PK\\x03\\x04')";
}

export function openTorchZip(blob: Blob, file: string): Promise<WeightFile> {
  return guard(file, async () => {
    const fail = (reason: string): never => {
      throw new WeightFileError(file, reason);
    };
    const head = await readRange(blob, file, 0, Math.min(blob.size, LEGACY_MAGIC.length), 'the first bytes');
    if (!startsLikeZip(head)) fail(notZip(head));

    const entries = await readZipDirectory(blob, file);
    const pkl = [...entries.values()].find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
    if (!pkl) {
      const some = [...entries.keys()].slice(0, 5).join(', ');
      return fail(`the zip has no <archive>/data.pkl, so it is not a torch.save checkpoint (entries: ${some || 'none'})`);
    }
    const archive = pkl.name.slice(0, -'data.pkl'.length);
    const readEntry = async (entry: ZipEntry) => {
      const { begin, end } = await zipEntryRange(blob, file, entry);
      return readRange(blob, file, begin, end, `zip entry '${entry.name}'`);
    };
    const byteorder = entries.get(`${archive}byteorder`);
    if (byteorder && new TextDecoder().decode(await readEntry(byteorder)).trim() === 'big') {
      fail('the checkpoint was saved on a big-endian machine, which this reader does not support');
    }
    if (pkl.size > MAX_PICKLE_BYTES) fail(`data.pkl is ${pkl.size} bytes, too large for a state dict`);

    const root = unpickle(await readEntry(pkl), fail);
    const found = findStateDict(root, (v) => v instanceof TensorRef);
    if (!found.dict) return fail(found.reason ?? 'no state dict');
    const named = new Map<string, TensorRef>();
    for (const [key, value] of found.dict) if (value instanceof TensorRef) named.set(String(key), value);
    const { tensors, notes } = stripSharedPrefixes(named);

    // storage key -> its zip entry's data range, read from the local header once
    const ranges = new Map<string, Promise<{ begin: number; end: number }>>();
    const storageRange = (storage: StorageRef, entry: ZipEntry) => {
      if (!ranges.has(storage.key)) ranges.set(storage.key, zipEntryRange(blob, file, entry));
      return ranges.get(storage.key)!;
    };

    const out = new Map<string, TensorEntry>();
    for (const [name, t] of tensors) {
      const entry = checkTensor(name, t, entries.get(`${archive}data/${t.storage.key}`), fail);
      const read = () => guard(file, async () => readView(t, await storageRange(t.storage, entry), blob, file, name));
      out.set(name, { name, dtype: t.storage.dtype, shape: t.shape, read });
    }
    return { file, format: 'torch', tensors: out, metadata: {}, notes: [...found.notes, ...notes] };
  });
}

/** Checks a tensor's storage entry and that its view stays inside the storage; returns the entry. */
function checkTensor(name: string, t: TensorRef, entry: ZipEntry | undefined, fail: (reason: string) => never): ZipEntry {
  const { storage } = t;
  if (!entry) return fail(`tensor '${name}' names storage '${storage.key}', which the zip lacks`);
  checkStored(entry, fail);
  const size = dtypeBytes(storage.dtype)!; // every storage class maps to a decoded dtype
  if (entry.size !== storage.numel * size) {
    fail(`storage '${storage.key}' holds ${entry.size} bytes but should hold ${storage.numel} x ${storage.dtype} = ${storage.numel * size}`);
  }
  if (numel(t.shape) > 0 && lastElement(t) >= storage.numel) {
    fail(`truncated: tensor '${name}' needs elements ${t.offset}..${lastElement(t) + 1} of storage '${storage.key}', which holds ${storage.numel}`);
  }
  return entry;
}

/** Index in the storage of the view's last element (the view is not empty). */
const lastElement = (t: TensorRef) => t.shape.reduce((last, d, i) => last + (d - 1) * t.stride[i], t.offset);

/** Whether the view's elements lie in row-major order (dimensions of size 1 may have any stride). */
function isRowMajor(t: TensorRef): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

/** Reads the storage elements the view spans and, for a strided view, gathers them in row-major order. */
async function readView(t: TensorRef, data: { begin: number }, blob: Blob, file: string, name: string): Promise<Float32Array> {
  const count = numel(t.shape);
  if (count === 0) return new Float32Array(0);
  const size = dtypeBytes(t.storage.dtype)!;
  const span = lastElement(t) - t.offset + 1;
  const begin = data.begin + t.offset * size;
  // span: the storage's elements offset .. last element of the view, decoded
  const span32 = decodeToFloat32(await readRange(blob, file, begin, begin + span * size, `tensor '${name}'`), t.storage.dtype, span);
  return isRowMajor(t) ? span32 : gather(span32, t.shape, t.stride);
}

/** out[i] = src[sum of index_d x stride_d] for the row-major multi-index of i. */
function gather(src: Float32Array, shape: number[], stride: number[]): Float32Array {
  const out = new Float32Array(numel(shape));
  const index = new Array<number>(shape.length).fill(0);
  let at = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = src[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      at += stride[d];
      if (index[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

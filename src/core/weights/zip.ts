// A minimal ZIP reader over a Blob, enough for torch.save archives: the End Of Central Directory
// (and its ZIP64 locator and record), the central directory, and each entry's local header,
// read when the entry is. Entries must be stored (method 0); nothing is decompressed.

import { readRange, u64 } from './blob-range.ts';
import { WeightFileError } from './errors.ts';

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed */
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_BYTES = 22;
const LOCATOR_BYTES = 20;
const ZIP64_EOCD_BYTES = 56;
const CENTRAL_BYTES = 46;
const LOCAL_BYTES = 30;
const MAX_COMMENT = 0xffff;
/** Larger central directories are refused rather than read (torch's hold ~100 bytes an entry). */
const MAX_DIRECTORY_BYTES = 64 * 2 ** 20;

interface Directory {
  entries: number;
  offset: number;
  size: number;
}

/** The archive's entries by name, from its central directory. */
export async function readZipDirectory(blob: Blob, file: string): Promise<Map<string, ZipEntry>> {
  const fail = (reason: string): never => {
    throw new WeightFileError(file, reason);
  };
  const dir = await findDirectory(blob, file);
  if (dir.size > MAX_DIRECTORY_BYTES) fail(`zip central directory of ${dir.size} bytes is too large`);
  // bytes: the whole central directory, one 46-byte header + name + extra + comment per entry
  const bytes = await readRange(blob, file, dir.offset, dir.offset + dir.size, 'the zip central directory');
  const view = new DataView(bytes.buffer);
  const names = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < dir.entries; i++) {
    if (p + CENTRAL_BYTES > bytes.length || view.getUint32(p, true) !== CENTRAL_SIG) {
      fail(`zip central directory entry ${i} is damaged (no signature at byte ${dir.offset + p})`);
    }
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    const next = p + CENTRAL_BYTES + nameLength + extraLength + commentLength;
    if (next > bytes.length) fail(`zip central directory entry ${i} runs past the directory`);
    const entry: ZipEntry = {
      name: names.decode(bytes.subarray(p + CENTRAL_BYTES, p + CENTRAL_BYTES + nameLength)),
      flags: view.getUint16(p + 8, true),
      method: view.getUint16(p + 10, true),
      compressedSize: view.getUint32(p + 20, true),
      size: view.getUint32(p + 24, true),
      localHeaderOffset: view.getUint32(p + 42, true),
    };
    readZip64Extra(view, p + CENTRAL_BYTES + nameLength, extraLength, entry, fail);
    entries.set(entry.name, entry);
    p = next;
  }
  return entries;
}

/**
 * Absolute byte range of a stored entry's data, from its local header (whose extra field, torch's
 * alignment padding, can differ in length from the central directory's).
 */
export async function zipEntryRange(blob: Blob, file: string, entry: ZipEntry): Promise<{ begin: number; end: number }> {
  const fail = (reason: string): never => {
    throw new WeightFileError(file, reason);
  };
  checkStored(entry, fail);
  const at = entry.localHeaderOffset;
  const local = await readRange(blob, file, at, at + LOCAL_BYTES, `the local header of '${entry.name}'`);
  const view = new DataView(local.buffer);
  if (view.getUint32(0, true) !== LOCAL_SIG) fail(`zip entry '${entry.name}' has no local header at byte ${at}`);
  const begin = at + LOCAL_BYTES + view.getUint16(26, true) + view.getUint16(28, true);
  const end = begin + entry.size;
  if (end > blob.size) fail(`truncated: zip entry '${entry.name}' needs bytes ${begin}..${end} but the file has ${blob.size}`);
  return { begin, end };
}

/** Refuses an entry this reader cannot hand out as raw bytes (compressed or encrypted). */
export function checkStored(entry: ZipEntry, fail: (reason: string) => never): void {
  if (entry.method !== 0) {
    const how = entry.method === 8 ? 'deflate' : `method ${entry.method}`;
    fail(`zip entry '${entry.name}' is compressed (${how}); torch.save stores entries uncompressed, so re-save the checkpoint with torch.save rather than re-zipping it`);
  }
  if (entry.flags & 1) fail(`zip entry '${entry.name}' is encrypted`);
  if (entry.compressedSize !== entry.size) fail(`zip entry '${entry.name}' is stored but its sizes differ`);
}

/** Locates the central directory from the EOCD record, or its ZIP64 record when there is one. */
async function findDirectory(blob: Blob, file: string): Promise<Directory> {
  const fail = (reason: string): never => {
    throw new WeightFileError(file, reason);
  };
  // tail: the file's last bytes; first try an EOCD with no comment, then the longest comment
  let tail = await readTail(blob, file, EOCD_BYTES + LOCATOR_BYTES);
  let eocd = findEocd(tail);
  if (eocd < 0 && blob.size > tail.length) {
    tail = await readTail(blob, file, EOCD_BYTES + MAX_COMMENT + LOCATOR_BYTES);
    eocd = findEocd(tail);
  }
  if (eocd < 0) fail('not a zip file (no end of central directory record)');
  const view = new DataView(tail.buffer);
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) fail('multi-part zip archives are not supported');
  const dir: Directory = {
    entries: view.getUint16(eocd + 10, true),
    size: view.getUint32(eocd + 12, true),
    offset: view.getUint32(eocd + 16, true),
  };
  const locator = eocd - LOCATOR_BYTES;
  if (locator >= 0 && view.getUint32(locator, true) === ZIP64_LOCATOR_SIG) {
    const at = u64(view, locator + 8);
    const record = await readRange(blob, file, at, at + ZIP64_EOCD_BYTES, 'the zip64 end of central directory');
    const r = new DataView(record.buffer);
    if (r.getUint32(0, true) !== ZIP64_EOCD_SIG) fail(`zip64 end of central directory is missing at byte ${at}`);
    return { entries: u64(r, 32), size: u64(r, 40), offset: u64(r, 48) };
  }
  if (dir.entries === 0xffff || dir.size === 0xffffffff || dir.offset === 0xffffffff) {
    fail('zip64 archive without its zip64 end of central directory locator');
  }
  return dir;
}

async function readTail(blob: Blob, file: string, length: number): Promise<Uint8Array> {
  const begin = Math.max(0, blob.size - length);
  return readRange(blob, file, begin, blob.size, 'the zip directory');
}

/** Offset in `tail` of the last EOCD signature whose comment fits, or -1. */
function findEocd(tail: Uint8Array): number {
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  for (let p = tail.length - EOCD_BYTES; p >= 0; p--) {
    if (view.getUint32(p, true) === EOCD_SIG && p + EOCD_BYTES + view.getUint16(p + 20, true) <= tail.length) return p;
  }
  return -1;
}

/**
 * Fills in the 64-bit sizes and offset from the ZIP64 extra field (id 1), which holds, in order,
 * only those whose 32-bit fields are all ones.
 */
function readZip64Extra(view: DataView, at: number, length: number, entry: ZipEntry, fail: (reason: string) => never): void {
  const wide = ['size', 'compressedSize', 'localHeaderOffset'] as const;
  if (!wide.some((k) => entry[k] === 0xffffffff)) return;
  for (let p = at; p + 4 <= at + length; ) {
    const id = view.getUint16(p, true);
    const size = view.getUint16(p + 2, true);
    if (p + 4 + size > at + length) fail(`zip entry '${entry.name}' has a damaged extra field`);
    if (id === 1) {
      let q = p + 4;
      for (const k of wide) {
        if (entry[k] !== 0xffffffff) continue;
        if (q + 8 > p + 4 + size) fail(`zip entry '${entry.name}' has a short zip64 extra field`);
        entry[k] = u64(view, q);
        q += 8;
      }
      return;
    }
    p += 4 + size;
  }
  fail(`zip entry '${entry.name}' needs a zip64 extra field and has none`);
}

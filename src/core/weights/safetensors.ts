// safetensors: 8 bytes little-endian u64 header length N, N bytes of UTF-8 JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}, then the
// data section, little-endian row-major, offsets relative to its start (byte 8 + N).
// Opening reads the header only; each tensor's bytes are read when asked for.

import { readRange, u64 } from './blob-range.ts';
import { SUPPORTED_DTYPES, decodeToFloat32, dtypeBytes, isDims, numel } from './dtypes.ts';
import { WeightFileError, guard } from './errors.ts';
import type { TensorEntry, WeightFile } from './types.ts';
import { stripSharedPrefixes } from './unwrap.ts';

/** The format's limit on the header (safetensors refuses larger ones). */
export const MAX_HEADER_BYTES = 100_000_000;

interface Located {
  dtype: string;
  shape: number[];
  /** absolute byte range in the file */
  begin: number;
  end: number;
}

export function openSafetensors(blob: Blob, file: string): Promise<WeightFile> {
  return guard(file, async () => {
    const fail = (reason: string): never => {
      throw new WeightFileError(file, reason);
    };
    if (blob.size < 8) fail(`file is ${blob.size} bytes, shorter than the 8-byte header length`);
    const lengthBytes = await readRange(blob, file, 0, 8, 'the header length');
    const headerLength = u64(new DataView(lengthBytes.buffer), 0);
    if (headerLength > MAX_HEADER_BYTES) {
      fail(`header length ${headerLength} bytes is over the format's limit of ${MAX_HEADER_BYTES}`);
    }
    const dataStart = 8 + headerLength;
    if (dataStart > blob.size) {
      fail(`truncated: the header needs bytes 8..${dataStart} but the file has ${blob.size}`);
    }
    const header = parseHeader(await readRange(blob, file, 8, dataStart, 'the header'), fail);

    const located = new Map<string, Located>();
    let metadata: Record<string, string> = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') metadata = checkMetadata(info, fail);
      else located.set(name, locate(name, info, dataStart, blob.size, fail));
    }

    const { tensors, notes } = stripSharedPrefixes(located);
    const entries = new Map<string, TensorEntry>();
    for (const [name, t] of tensors) {
      const read = () =>
        guard(file, async () => {
          if (dtypeBytes(t.dtype) === undefined) fail(unsupported(name, t.dtype));
          const bytes = await readRange(blob, file, t.begin, t.end, `tensor '${name}'`);
          return decodeToFloat32(bytes, t.dtype, numel(t.shape));
        });
      entries.set(name, { name, dtype: t.dtype, shape: t.shape, read });
    }
    return { file, format: 'safetensors', tensors: entries, metadata, notes };
  });
}

export function unsupported(name: string, dtype: string): string {
  return `tensor '${name}' has dtype ${dtype}, which this reader does not decode (it decodes ${SUPPORTED_DTYPES.join(', ')})`;
}

function parseHeader(bytes: Uint8Array, fail: (reason: string) => never): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    return fail('the header is JSON but not an object of tensors');
  }
  return header as Record<string, unknown>;
}

function checkMetadata(info: unknown, fail: (reason: string) => never): Record<string, string> {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return fail('__metadata__ is not an object');
  const entries = Object.entries(info);
  const bad = entries.find(([, v]) => typeof v !== 'string');
  if (bad) fail(`__metadata__ must map strings to strings, but '${bad[0]}' is ${JSON.stringify(bad[1])}`);
  return Object.fromEntries(entries) as Record<string, string>;
}

/** Checks one header entry and turns its data offsets into absolute file offsets. */
function locate(name: string, info: unknown, dataStart: number, fileSize: number, fail: (reason: string) => never): Located {
  const { dtype, shape, data_offsets: offsets } = (typeof info === 'object' && info !== null ? info : {}) as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`tensor '${name}' has no dtype`);
  if (!isDims(shape)) fail(`tensor '${name}' has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
  if (!isDims(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
    fail(`tensor '${name}' has data_offsets ${JSON.stringify(offsets)}, not [begin, end] with begin <= end`);
  }
  const [begin, end] = (offsets as number[]).map((o) => dataStart + o);
  if (end > fileSize) {
    fail(`truncated: tensor '${name}' needs bytes ${begin}..${end} but the file has ${fileSize}`);
  }
  const size = dtypeBytes(dtype as string);
  const dims = shape as number[];
  if (size !== undefined && end - begin !== size * numel(dims)) {
    fail(
      `tensor '${name}' is ${dtype} [${dims.join(', ')}], ${size * numel(dims)} bytes, ` +
        `but its data_offsets span ${end - begin} bytes`,
    );
  }
  return { dtype: dtype as string, shape: dims, begin, end };
}

/**
 * A safetensors file of float32 tensors, in the given order; the header is padded with spaces to
 * a multiple of 8 bytes so the data section starts aligned.
 */
export function writeSafetensors(
  tensors: { name: string; shape: number[]; data: Float32Array }[],
  metadata?: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  // null prototype: a tensor named '__proto__' is an ordinary key
  const header: Record<string, unknown> = Object.create(null);
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const { name, shape, data } of tensors) {
    if (name === '__metadata__' || Object.hasOwn(header, name)) throw new Error(`writeSafetensors: duplicate or reserved name '${name}'`);
    if (!isDims(shape) || numel(shape) !== data.length) {
      throw new Error(`writeSafetensors: '${name}' has ${data.length} values for shape [${shape.join(', ')}]`);
    }
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  // out: [u64 header length][header JSON, space-padded][tensor data in order]
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const { data } of tensors) {
    for (let i = 0; i < data.length; i++, at += 4) view.setFloat32(at, data[i], true);
  }
  return out;
}

// Random-access byte sources behind SlideSource: a Blob/File (never read whole), a URL (HTTP range
// requests, one request per read), or a Node file (node-open.ts). Reads past the end of the file
// return fewer bytes; readExact turns a short read into a 'truncated' SlideError.
import { SlideError, throwIfAborted } from './errors.ts';

export interface ByteSource {
  /** File name, path or URL: what errors name. */
  readonly name: string;
  /** Size in bytes; null while unknown (a URL before its first response). */
  readonly size: number | null;
  /** Bytes [offset, offset + length), fewer only where the file ends. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** Reads exactly `length` bytes or throws a 'truncated' SlideError. */
export async function readExact(src: ByteSource, offset: number, length: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
  if (src.size !== null && offset + length > src.size) {
    throw new SlideError(src.name, `truncated file: ${what} at bytes ${offset}..${offset + length} lies past the end of the file (${src.size} bytes)`, 'truncated');
  }
  const bytes = await src.read(offset, length, signal);
  if (bytes.length < length) {
    throw new SlideError(src.name, `truncated file: ${what} at byte ${offset} has ${bytes.length} of ${length} bytes`, 'truncated');
  }
  return bytes;
}

export function blobByteSource(blob: Blob, name = (blob as { name?: string }).name ?? 'blob'): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length, signal) {
      throwIfAborted(signal, name);
      const end = Math.min(offset + length, blob.size);
      if (offset >= end) return new Uint8Array(0);
      const buffer = await blob.slice(offset, end).arrayBuffer();
      throwIfAborted(signal, name);
      return new Uint8Array(buffer);
    },
  };
}

export interface UrlSourceOptions {
  headers?: Record<string, string>;
  /** Largest whole-file response accepted from a server that ignores Range (bytes). */
  maxWholeFile?: number;
}

/** An HTTP(S) source. Every read is one range request; `requests` counts them. */
export class UrlByteSource implements ByteSource {
  size: number | null = null;
  requests = 0;
  private whole: Uint8Array | null = null;
  constructor(readonly name: string, private readonly options: UrlSourceOptions = {}) {}

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal, this.name);
    if (this.whole) return this.whole.subarray(offset, Math.min(offset + length, this.whole.length));
    if (this.size !== null && offset >= this.size) return new Uint8Array(0);
    const last = (this.size === null ? offset + length : Math.min(offset + length, this.size)) - 1;
    this.requests++;
    let response: Response;
    try {
      // no-store: Chromium's HTTP cache otherwise answers a range with a different cached range.
      response = await fetch(this.name, { headers: { ...this.options.headers, Range: `bytes=${offset}-${last}` }, signal, cache: 'no-store' });
    } catch (e) {
      if (signal?.aborted) throw new SlideError(this.name, 'aborted', 'aborted');
      throw new SlideError(this.name, `request failed: ${(e as Error).message}`, 'io');
    }
    if (response.status === 404) throw new SlideError(this.name, 'not found (HTTP 404)', 'not-found');
    if (response.status === 416) {
      const total = /\/(\d+)/.exec(response.headers.get('content-range') ?? '');
      if (total) this.size = Number(total[1]);
      return new Uint8Array(0); // the range starts at or past the end of the file
    }
    if (response.status === 206) {
      // Content-Range: bytes START-END/TOTAL. Trust it, not the request: slice what was asked for.
      const range = /bytes\s+(\d+)-(\d+)\/(\d+|\*)/.exec(response.headers.get('content-range') ?? '');
      const body = new Uint8Array(await response.arrayBuffer());
      if (!range) throw new SlideError(this.name, 'HTTP 206 response without a Content-Range header', 'io');
      if (range[3] !== '*') this.size = Number(range[3]);
      const start = Number(range[1]);
      if (start > offset) throw new SlideError(this.name, `server answered bytes ${start}- for a request from byte ${offset}`, 'io');
      return body.subarray(offset - start, offset - start + length);
    }
    if (response.status === 200) {
      // The server ignored Range: accept the whole file only when it is small.
      const declared = Number(response.headers.get('content-length') ?? NaN);
      const limit = this.options.maxWholeFile ?? 64 * 2 ** 20;
      if (!(declared <= limit)) {
        await response.body?.cancel();
        throw new SlideError(this.name, `the server does not support HTTP range requests (it answered a Range request with the whole file, HTTP 200${Number.isFinite(declared) ? `, ${declared} bytes` : ''}): slides are read by range, never downloaded whole${limit > 0 ? ' past ' + limit + ' bytes' : ''}; serve them from a server that answers Range`, 'io');
      }
      this.whole = new Uint8Array(await response.arrayBuffer());
      this.size = this.whole.length;
      return this.whole.subarray(offset, Math.min(offset + length, this.whole.length));
    }
    throw new SlideError(this.name, `HTTP ${response.status} ${response.statusText}`, 'io');
  }
}

/** The shape geotiff's GeoTIFF.fromSource expects (its BaseSource). */
export interface GeotiffSourceLike {
  fetch(slices: { offset: number; length: number }[], signal?: AbortSignal): Promise<ArrayBuffer[]>;
  readonly fileSize: number | null;
  close(): Promise<void>;
}

/** Adapts a ByteSource for geotiff's header and IFD parser (short reads allowed at EOF). */
export function geotiffSource(src: ByteSource): GeotiffSourceLike {
  return {
    async fetch(slices, signal) {
      return Promise.all(
        slices.map(async ({ offset, length }) => {
          const bytes = await src.read(offset, length, signal);
          return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
            ? (bytes.buffer as ArrayBuffer)
            : (bytes.slice().buffer as ArrayBuffer);
        }),
      );
    },
    get fileSize() {
      return src.size;
    },
    async close() {
      await src.close?.();
    },
  };
}

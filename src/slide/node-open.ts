// Node only: opens a slide from a file path (fs random reads, never the whole file).
import { open, stat } from 'node:fs/promises';
import type { ByteSource } from './byte-source.ts';
import { SlideError, throwIfAborted } from './errors.ts';
import { openSlide, type OpenOptions, type SlideSource } from './source.ts';

export async function fileByteSource(path: string): Promise<ByteSource> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new SlideError(path, 'not a file', 'not-found');
    size = s.size;
  } catch (e) {
    if (e instanceof SlideError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new SlideError(path, code === 'ENOENT' ? 'no such file' : `cannot open (${code ?? (e as Error).message})`, code === 'ENOENT' ? 'not-found' : 'io');
  }
  const handle = await open(path, 'r');
  let closed = false;
  return {
    name: path,
    size,
    async read(offset, length, signal) {
      throwIfAborted(signal, path);
      const n = Math.max(0, Math.min(length, size - offset));
      const out = new Uint8Array(n);
      let done = 0;
      while (done < n) {
        const { bytesRead } = await handle.read(out, done, n - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === n ? out : out.subarray(0, done);
    },
    async close() {
      if (!closed) {
        closed = true;
        await handle.close();
      }
    },
  };
}

/** Opens the slide at `path`. The caller closes it. */
export async function fromPath(path: string, options: OpenOptions = {}): Promise<SlideSource> {
  return openSlide(await fileByteSource(path), { ...options });
}

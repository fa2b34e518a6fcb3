// File-backed Blobs (Node's fs.openAsBlob) across worker_threads. Node refuses to clone them
// ("File-backed Blobs are not cloneable"), so a rank could not be given a slide opened that way.
// Instead of the Blob, a small reference crosses (id, size, name); the worker reads byte ranges
// through a MessagePort that the main thread answers with `blob.slice(start, end)`, so a slide is
// never read whole, neither here nor there. In-memory Blobs clone as they are.
import type { MessagePort } from 'node:worker_threads';
import type { RankInit } from '../core/protocol.ts';

/** What crosses to the worker instead of a file-backed Blob. */
export interface RemoteBlobRef {
  remoteBlob: number;
  size: number;
  name: string;
}

interface ReadRequest {
  id: number;
  blob: number;
  start: number;
  end: number;
}
type ReadReply = { id: number; bytes: ArrayBuffer } | { id: number; error: string };

export function isRemoteBlobRef(value: unknown): value is RemoteBlobRef {
  return typeof value === 'object' && value !== null && typeof (value as RemoteBlobRef).remoteBlob === 'number';
}

function cloneable(blob: Blob): boolean {
  try {
    structuredClone(blob); // an in-memory Blob clones without copying its bytes
    return true;
  } catch {
    return false;
  }
}

/**
 * The main-thread end: answers a worker's range reads of the Blobs it shared. One per worker;
 * the port is unref'd, so it never keeps the process alive.
 */
export class BlobServer {
  private readonly blobs = new Map<number, Blob>();
  private next = 0;

  constructor(private readonly port: MessagePort) {
    port.on('message', (req: ReadRequest) => void this.answer(req));
    port.unref();
  }

  private async answer({ id, blob, start, end }: ReadRequest): Promise<void> {
    const b = this.blobs.get(blob);
    let reply: ReadReply;
    try {
      if (!b) throw new Error(`blob ${blob} was not shared with this worker`);
      reply = { id, bytes: await b.slice(start, end).arrayBuffer() };
    } catch (e) {
      reply = { id, error: (e as Error).message };
    }
    this.port.postMessage(reply, 'bytes' in reply ? [reply.bytes] : []);
  }

  /** `init` with every file-backed Blob of its slides replaced by a RemoteBlobRef (others untouched). */
  share(init: RankInit): RankInit {
    if (init.tiles.kind !== 'slides' || !init.tiles.slides.some((s) => typeof s.source !== 'string' && !cloneable(s.source))) return init;
    const slides = init.tiles.slides.map((s) => {
      if (typeof s.source === 'string' || cloneable(s.source)) return s;
      const id = this.next++;
      this.blobs.set(id, s.source);
      const ref: RemoteBlobRef = { remoteBlob: id, size: s.source.size, name: (s.source as { name?: string }).name ?? s.id };
      return { ...s, source: ref as unknown as Blob }; // rebuilt as a Blob by the worker (remoteBlob below)
    });
    return { ...init, tiles: { kind: 'slides', slides } };
  }

  close(): void {
    this.blobs.clear();
    this.port.close();
  }
}

/** The worker end: turns RemoteBlobRefs back into Blobs that read their bytes through `port`. */
export class BlobClient {
  private readonly pending = new Map<number, { resolve: (b: ArrayBuffer) => void; reject: (e: Error) => void }>();
  private next = 0;

  constructor(private readonly port: MessagePort) {
    port.on('message', (reply: ReadReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if ('error' in reply) p.reject(new Error(reply.error));
      else p.resolve(reply.bytes);
    });
    port.unref();
  }

  /** Bytes [start, end) of the main thread's Blob `blob`. */
  read(blob: number, start: number, end: number): Promise<ArrayBuffer> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.port.postMessage({ id, blob, start, end } satisfies ReadRequest);
    });
  }

  blob(ref: RemoteBlobRef): Blob {
    return new RemoteFileBlob(this, ref.remoteBlob, 0, ref.size, ref.name);
  }
}

/** A Blob whose bytes stay in the main thread's file: slice() is free, arrayBuffer() reads one range. */
class RemoteFileBlob extends Blob {
  constructor(
    private readonly client: BlobClient,
    private readonly ref: number,
    private readonly start: number,
    private readonly end: number,
    readonly name: string,
  ) {
    super([]);
  }

  override get size(): number {
    return this.end - this.start;
  }

  override slice(start = 0, end = this.size): Blob {
    const clamp = (v: number) => Math.max(0, Math.min(this.size, v < 0 ? this.size + v : v));
    const s = clamp(start), e = Math.max(s, clamp(end));
    return new RemoteFileBlob(this.client, this.ref, this.start + s, this.start + e, this.name);
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    return this.size === 0 ? new ArrayBuffer(0) : this.client.read(this.ref, this.start, this.end);
  }

  override async text(): Promise<string> {
    return new TextDecoder().decode(await this.arrayBuffer());
  }
}

// File-backed Blobs (fs.openAsBlob) reach a worker as a reference and are read by range through
// a port: the bytes match the file, slices nest, a bad read names the reason.
import { openAsBlob, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { BlobClient, BlobServer, isRemoteBlobRef } from './file-blobs.ts';
import { parseConfig } from '../core/config.ts';
import type { RankInit } from '../core/protocol.ts';

const dir = mkdtempSync(join(tmpdir(), 'slide-lab-blobs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('file-backed Blobs across threads', () => {
  it('cross as references, read by range through the port, equal to the file', async () => {
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) & 255);
    writeFileSync(join(dir, 'slide.bin'), bytes);
    const file = await openAsBlob(join(dir, 'slide.bin'));
    expect(() => structuredClone(file)).toThrow(/not cloneable/);
    const memory = new Blob([bytes.subarray(0, 10)]);
    const { port1, port2 } = new MessageChannel();
    const server = new BlobServer(port1);
    const client = new BlobClient(port2);
    const init: RankInit = {
      rank: 0, ranks: 1, config: parseConfig({}),
      tiles: { kind: 'slides', slides: [{ id: 'a', source: file, grid: null as never }, { id: 'b', source: memory, grid: null as never }, { id: 'c', source: '/x.tiff', grid: null as never }] },
    };
    const shared = server.share(init);
    if (shared.tiles.kind !== 'slides') throw new Error('kind changed');
    const [a, b, c] = shared.tiles.slides.map((s) => s.source);
    expect(isRemoteBlobRef(a)).toBe(true);
    expect(b).toBe(memory); // cloneable: untouched
    expect(c).toBe('/x.tiff');
    expect(() => structuredClone(shared)).not.toThrow();
    const remote = client.blob(structuredClone(a) as never);
    expect(remote.size).toBe(bytes.length);
    expect(new Uint8Array(await remote.slice(1000, 1010).arrayBuffer())).toEqual(bytes.subarray(1000, 1010));
    expect(new Uint8Array(await remote.slice(60_000).slice(5, 9).arrayBuffer())).toEqual(bytes.subarray(60_005, 60_009));
    expect(new Uint8Array(await remote.slice(69_990, 80_000).arrayBuffer())).toEqual(bytes.subarray(69_990)); // clamped at the end
    const many = await Promise.all([0, 20_000, 40_000].map((o) => remote.slice(o, o + 3).arrayBuffer()));
    expect(many.map((m) => [...new Uint8Array(m)])).toEqual([0, 20_000, 40_000].map((o) => [...bytes.subarray(o, o + 3)]));
    await expect(client.read(99, 0, 4)).rejects.toThrow(/blob 99 was not shared/);
    server.close();
    port2.close();
  });
});

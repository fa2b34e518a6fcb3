// Node ranks on worker_threads through comlink's node adapter: the same Rank code as the
// browser workers, each with its own tfjs engine and backend.
import { MessageChannel, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { RankApi } from '../core/protocol.ts';
import { remoteRank, type RemoteRank } from './expose.ts';
import { BlobServer } from './file-blobs.ts';

const ENTRY = new URL('../../workers/rank.node.mjs', import.meta.url);

export type NodeRank = RemoteRank;

export function nodeWorkerRanks(n: number): NodeRank[] {
  return Array.from({ length: n }, (_, i) => {
    // File-backed Blobs (fs.openAsBlob) cannot be cloned: the worker reads their ranges through this port.
    const { port1, port2 } = new MessageChannel();
    const blobs = new BlobServer(port1);
    const worker = new Worker(ENTRY, { workerData: { blobPort: port2 }, transferList: [port2] });
    worker.unref();
    const remote = Comlink.wrap<RankApi>(nodeEndpoint(worker));
    // A worker that dies must fail the calls waiting on it, never leave them hanging.
    const died = new Promise<never>((_, reject) => {
      worker.once('error', (e) => reject(new Error(`rank worker ${i} failed: ${e.message}`)));
      worker.once('exit', (code) => reject(new Error(`rank worker ${i} exited (code ${code})`)));
    });
    const terminate = () => {
      remote[Comlink.releaseProxy]();
      blobs.close();
      void worker.terminate();
    };
    const rank = remoteRank(remote, terminate, died);
    const init = rank.init;
    rank.init = (req) => init(blobs.share(req));
    return rank;
  });
}

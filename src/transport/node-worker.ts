// Node ranks on worker_threads through comlink's node adapter: the same Rank code as the
// browser workers, each with its own tfjs engine and backend.
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { RankApi } from '../core/protocol.ts';
import { remoteRank, type RemoteRank } from './expose.ts';

const ENTRY = new URL('../../workers/rank.node.mjs', import.meta.url);

export type NodeRank = RemoteRank;

export function nodeWorkerRanks(n: number): NodeRank[] {
  return Array.from({ length: n }, (_, i) => {
    const worker = new Worker(ENTRY);
    worker.unref();
    const remote = Comlink.wrap<RankApi>(nodeEndpoint(worker));
    // A worker that dies must fail the calls waiting on it, never leave them hanging.
    const died = new Promise<never>((_, reject) => {
      worker.once('error', (e) => reject(new Error(`rank worker ${i} failed: ${e.message}`)));
      worker.once('exit', (code) => reject(new Error(`rank worker ${i} exited (code ${code})`)));
    });
    const terminate = () => {
      remote[Comlink.releaseProxy]();
      void worker.terminate();
    };
    return remoteRank(remote, terminate, died);
  });
}

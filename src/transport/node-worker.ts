// Node ranks on worker_threads through comlink's node adapter: the same Rank code as the
// browser workers, each with its own tfjs engine and backend. A worker that dies (an uncaught
// error, process.exit, termination, ERR_WORKER_OUT_OF_MEMORY under resource limits) fails every
// call waiting on it at once, as RankCrashed (src/transport/rank-wrapper.ts).
import { MessageChannel, Worker, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { RankApi, RankInit } from '../core/protocol.ts';
import { comlinkSend } from './expose.ts';
import { BlobServer } from './file-blobs.ts';
import { WorkerDied, workerRank, type GuardOptions, type RankLink, type WorkerRank } from './rank-wrapper.ts';

const ENTRY = new URL('../../workers/rank.node.mjs', import.meta.url);

export type NodeRank = WorkerRank;

function openNodeWorker(i: number, resourceLimits?: ResourceLimits): RankLink {
  // File-backed Blobs (fs.openAsBlob) cannot be cloned: the worker reads their ranges through this port.
  const { port1, port2 } = new MessageChannel();
  const blobs = new BlobServer(port1);
  const worker = new Worker(ENTRY, { workerData: { blobPort: port2 }, transferList: [port2], resourceLimits });
  worker.unref();
  const remote = Comlink.wrap<RankApi>(nodeEndpoint(worker));
  // A worker that dies must fail the calls waiting on it, never leave them hanging.
  const died = new Promise<never>((_, reject) => {
    worker.once('error', (e) => reject(new WorkerDied(`rank worker ${i} failed: ${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`)));
    worker.once('messageerror', (e) => reject(new WorkerDied(`rank worker ${i} sent a message that could not be deserialized: ${e.message}`)));
    worker.once('exit', (code) => reject(new WorkerDied(`rank worker ${i} exited (code ${code})`)));
  });
  const send = comlinkSend(remote);
  let ended = false;
  return {
    send: (method, arg) => (ended ? Promise.reject(new WorkerDied(`rank worker ${i} was terminated`)) : send(method, method === 'init' ? blobs.share(arg as RankInit) : arg)),
    died,
    kill: () => void worker.terminate(), // as a crash: the exit event reports it
    terminate: () => {
      if (ended) return;
      ended = true;
      remote[Comlink.releaseProxy]();
      blobs.close();
      void worker.terminate();
    },
  };
}

/** `resourceLimits`: each worker's V8 heap limits (tests: a rank that runs out of memory). */
export function nodeWorkerRanks(n: number, options?: GuardOptions, resourceLimits?: ResourceLimits): NodeRank[] {
  return Array.from({ length: n }, (_, i) => workerRank(i, () => openNodeWorker(i, resourceLimits), options));
}

// Browser ranks: one dedicated Web Worker per rank, each with its own WebGPU device. A worker
// that dies is noticed at once: an uncaught error in it (its `error` event) or a message that
// cannot be read (`messageerror`) ends it and fails every call waiting on it as RankCrashed.
// (A worker that the browser ends without any event, as an out-of-memory kill can, still falls
// to the call timeout.)
import * as Comlink from 'comlink';
import type { RankApi } from '../core/protocol.ts';
import { comlinkSend } from './expose.ts';
import { WorkerDied, workerRank, type GuardOptions, type RankLink, type WorkerRank } from './rank-wrapper.ts';

export type WebRank = WorkerRank;

function openWebWorker(i: number): RankLink {
  const worker = new Worker(new URL('../../workers/rank.worker.ts', import.meta.url), { type: 'module', name: `rank-${i}` });
  const remote = Comlink.wrap<RankApi>(worker);
  let fail!: (e: WorkerDied) => void;
  const died = new Promise<never>((_, reject) => (fail = reject));
  let ended = false;
  const end = (reason: string) => {
    if (ended) return;
    ended = true;
    fail(new WorkerDied(`rank worker ${i} ${reason}`));
    remote[Comlink.releaseProxy]();
    worker.terminate();
  };
  worker.addEventListener('error', (e) => {
    e.preventDefault();
    end(`had an uncaught error: ${e.message || 'unknown'}${e.filename ? ` (${e.filename}:${e.lineno})` : ''}`);
  });
  worker.addEventListener('messageerror', () => end('sent a message that could not be deserialized'));
  const send = comlinkSend(remote);
  return { send: (method, arg) => (ended ? Promise.reject(new WorkerDied(`rank worker ${i} was terminated`)) : send(method, arg)), died, terminate: () => end('was terminated') };
}

export function webWorkerRanks(n: number, options?: GuardOptions): WebRank[] {
  return Array.from({ length: n }, (_, i) => workerRank(i, () => openWebWorker(i), options));
}

// Node ranks on worker_threads through comlink's node adapter: the same Rank code as the
// browser workers, each with its own tfjs engine and backend.
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { RankApi } from '../core/protocol.ts';
import { remoteRank } from './expose.ts';

const ENTRY = new URL('../../workers/rank.node.mjs', import.meta.url);

export type NodeRank = RankApi & { terminate(): void };

export function nodeWorkerRanks(n: number): NodeRank[] {
  return Array.from({ length: n }, (_, i) => {
    const worker = new Worker(ENTRY);
    worker.unref();
    const remote = Comlink.wrap<RankApi>(nodeEndpoint(worker));
    const rank = remoteRank(remote, () => {
      remote[Comlink.releaseProxy]();
      void worker.terminate();
    });
    // A worker that dies must fail the calls waiting on it, never leave them hanging.
    const died = new Promise<never>((_, reject) => {
      worker.once('error', (e) => reject(new Error(`rank worker ${i} failed: ${e.message}`)));
      worker.once('exit', (code) => reject(new Error(`rank worker ${i} exited (code ${code})`)));
    });
    died.catch(() => undefined);
    return guard(rank, died);
  });
}

/** Races every call of a rank against its worker's death. */
function guard(rank: NodeRank, died: Promise<never>): NodeRank {
  const out = { ...rank };
  for (const key of ['init', 'encode', 'prefetch', 'backward', 'apply', 'backwardApply', 'getWeights', 'setWeights', 'getOptimizerState', 'setOptimizerState', 'memory', 'dispose'] as const) {
    const call = rank[key] as (a?: unknown) => Promise<unknown>;
    (out as Record<string, unknown>)[key] = (arg?: unknown) => Promise.race([call(arg), died]);
  }
  return out;
}

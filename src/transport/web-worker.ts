// Browser ranks: one dedicated Web Worker per rank, each with its own WebGPU device.
import * as Comlink from 'comlink';
import type { RankApi } from '../core/protocol.ts';
import { remoteRank, type RemoteRank } from './expose.ts';

export type WebRank = RemoteRank;

export function webWorkerRanks(n: number): WebRank[] {
  return Array.from({ length: n }, (_, i) => {
    const worker = new Worker(new URL('../../workers/rank.worker.ts', import.meta.url), { type: 'module', name: `rank-${i}` });
    const remote = Comlink.wrap<RankApi>(worker);
    return remoteRank(remote, () => {
      remote[Comlink.releaseProxy]();
      worker.terminate();
    });
  });
}

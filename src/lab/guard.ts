// Wraps each rank so a failure says where it happened ("rank 1, encode: ...") and a rank that
// stops answering fails after a timeout instead of hanging. The wrapper itself (timeout, crash
// detection, error context, transfer) is the one in src/transport/rank-wrapper.ts, which every
// transport uses; this is its entry for ranks of any transport, in-process ones included.
import type { RankApi } from '../core/protocol.ts';
import { guardedRank, type ControlledRank, type GuardOptions } from '../transport/rank-wrapper.ts';

export { RankError, RankCrashed, DeviceLost, isRankFault } from '../core/faults.ts';
export { RANK_TIMEOUT_MS, RANK_DISPOSE_TIMEOUT_MS, type GuardOptions, type ControlledRank } from '../transport/rank-wrapper.ts';

export function guardRank(rank: RankApi, index: number, options: GuardOptions = {}): ControlledRank {
  return guardedRank(rank, index, options);
}

export function terminateAll(ranks: readonly RankApi[]): void {
  for (const r of ranks) (r as ControlledRank).terminate?.();
}

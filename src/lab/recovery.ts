// Surviving rank faults. When a rank's worker dies (RankCrashed) or its WebGPU device is lost
// (DeviceLost), the step in flight is abandoned (the engine puts the aggregator back; no replica
// has applied the step's update, or all that survive have: see Engine.applyEverywhere), the calls
// still in flight on the other ranks are let settle, and each dead rank is restarted in place (a
// fresh worker, hence a fresh device: same rank index, tile source and shared-reduce buffers) and
// given the weights [P] and AdamW state of a healthy replica, which are identical on every replica
// (the engine checks their checksums each step). Then the step is retried. The user sees a notice.
import type { RankApi } from '../core/protocol.ts';
import { isRankFault, RankError, type RankFault } from '../core/faults.ts';
import { resetShared, type SharedReduceBuffers } from '../core/shared-reduce.ts';
import type { RankControl } from '../transport/rank-wrapper.ts';

/** What happened and what was done, for the user and the run's record. */
export interface FaultNotice {
  kind: RankFault['fault'];
  /** The rank whose fault was seen first, the call it failed in, and why. */
  rank: number;
  call: string;
  reason: string;
  /** The training step (or 'eval') that was abandoned and retried. */
  step: number | 'eval';
  /** Ranks restarted (the first one and any other found dead). */
  restarted: number[];
  /** The healthy replica whose weights and optimizer state they took. */
  donor: number;
  /** performance.now() when the fault was noticed, and when the restarted ranks were restored. */
  detectedAt: number;
  restoredAt: number;
  /** This step's recovery count (1 = first). */
  attempt: number;
  /** Whether the step was abandoned and retried (false: the fault came after the update was in elsewhere, so the step stood). */
  retried: boolean;
}

/** Recoveries allowed for one step before its fault ends the run. */
export const MAX_RECOVERIES_PER_STEP = 3;

/** The notice in words ("rank 1 crashed in backward at step 3: ...; restarted from rank 0 in 1.2 s; the step is retried"). */
export function describeFault(n: FaultNotice): string {
  const what = n.kind === 'crashed' ? 'crashed' : 'lost its WebGPU device';
  const where = n.step === 'eval' ? 'during validation' : `at step ${n.step}`;
  const others = n.restarted.filter((r) => r !== n.rank);
  return `rank ${n.rank} ${what} in ${n.call} ${where} (${n.reason}); restarted${others.length ? ` with rank ${others.join(', ')}` : ''} from rank ${n.donor}'s weights and optimizer state in ${((n.restoredAt - n.detectedAt) / 1000).toFixed(1)} s; ${n.retried ? `the ${n.step === 'eval' ? 'validation' : 'step'} is retried` : 'the step stands (the others had applied it)'}`;
}

/**
 * Restarts the ranks in `lost` (and any other found dead on the way) and restores them from a
 * healthy replica. Returns the donor and the ranks restarted. Throws when no replica survived
 * (then only the last checkpoint has the state) or the transport cannot restart a rank.
 */
export async function restoreRanks(ranks: readonly (RankApi & RankControl)[], lost: readonly number[], shared?: SharedReduceBuffers): Promise<{ donor: number; restarted: number[] }> {
  const dead = new Set(lost);
  // The abandoned step's calls must settle first: a survivor still in its backward would
  // otherwise interleave with the retried step's encode.
  await Promise.all(ranks.map((r) => r.settled?.()));
  let donor = -1;
  let state: { weights: Float32Array; optimizer: Awaited<ReturnType<RankApi['getOptimizerState']>> } | null = null;
  for (const [i, r] of ranks.entries()) {
    if (dead.has(i)) continue;
    try {
      state = { weights: await r.getWeights(), optimizer: await r.getOptimizerState() };
      donor = i;
      break;
    } catch (e) {
      if (!isRankFault(e)) throw e;
      dead.add(i);
    }
  }
  const first = Math.min(...dead);
  if (!state) throw new RankError(first, 'recovery', 'no healthy replica is left to restore from: resume from the last checkpoint');
  const restarted = [...dead].sort((a, b) => a - b);
  for (const i of restarted) {
    const r = ranks[i];
    if (!r.restart) throw new RankError(i, 'recovery', 'this transport cannot restart a rank');
    await r.restart();
    await r.setWeights(state.weights.slice());
    const opt = state.optimizer;
    if (opt) await r.setOptimizerState({ t: opt.t, m: opt.m.slice(), v: opt.v.slice() });
  }
  // The shared-memory reduction the fault aborted (its survivors left the barrier at once, or timed
  // out) starts the retried step from zero arrivals and no abort. No rank is inside it now: every
  // call has settled, and the dead ranks' deaths (which set the abort word) were all seen.
  if (shared) resetShared(shared);
  return { donor, restarted };
}

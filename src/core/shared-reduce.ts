// Gradient reduction in shared memory: no round trip through the main context. Each rank writes
// its share of dL/dθ into its own row of a SharedArrayBuffer, waits at a barrier, sums one shard
// of the parameter axis over all rows (in rank order 0..N-1, the same order as the star
// reduction, so the sum is bit-identical), waits again, and reads the full sum. Needs a thread
// that may block (Atomics.wait): Web Workers and worker_threads, not the page's main thread.
//
// A rank that dies (or fails before its share is in) must not leave the others blocked until the
// barrier's timeout: whoever learns of it (the main context's rank wrapper, on the worker's death)
// sets the abort word with abortShared(); every waiter wakes at once and throws a
// SharedReduceAborted, and a rank that arrives later throws it without arriving. A barrier passes
// only when all N ranks arrived, so the survivors either all get the full sum or none does (no
// replica applies a partial step). resetShared() clears the word and the arrivals once no rank is
// inside the reduction (the recovery, before the retried step).

export interface SharedReduceBuffers {
  /** Float32 [(N + 1) * P]: row r = rank r's share, row N = the sum. */
  grads: SharedArrayBuffer;
  /** Int32 [3]: arrivals at the barrier, barrier generation, abort word (0; r + 1: rank r died; -(r + 1): rank r failed). */
  sync: SharedArrayBuffer;
  ranks: number;
  params: number;
}

const ARRIVALS = 0;
const GENERATION = 1;
const ABORT = 2;
/** A waiter re-reads the abort word at least this often (an abort that lands between its check and its wait). */
const ABORT_POLL_MS = 50;

/** The name a rank's SharedReduceAborted carries across threads (the main side maps it to a fault by name). */
export const SHARED_REDUCE_ABORTED = 'SharedReduceAborted';

export function createSharedReduce(ranks: number, params: number): SharedReduceBuffers {
  return { grads: new SharedArrayBuffer(4 * (ranks + 1) * params), sync: new SharedArrayBuffer(4 * 3), ranks, params };
}

/** [P] view of the summed gradient (row N). */
export function sharedSum(b: SharedReduceBuffers): Float32Array {
  return new Float32Array(b.grads, 4 * b.ranks * b.params, b.params);
}

/** Why the reduction was aborted: which rank, and whether its worker died or its call failed before its share was in. */
export interface SharedAbort {
  rank: number;
  died: boolean;
}

/** A rank left the reduction because a peer died or failed: the step is abandoned, nothing was applied. */
export class SharedReduceAborted extends Error {
  constructor(readonly rank: number, readonly peer: SharedAbort) {
    super(
      peer.died
        ? `rank ${rank}: a peer rank (rank ${peer.rank}) died during the shared-memory gradient reduction; this rank left the barrier at once and applied nothing`
        : `rank ${rank}: a peer rank (rank ${peer.rank}) failed before its share reached the shared-memory gradient reduction; this rank left the barrier at once and applied nothing`,
    );
    this.name = SHARED_REDUCE_ABORTED;
  }
}

/**
 * Releases every rank waiting in the reduction (and fails any that arrives later): rank `rank`
 * died (`died`) or failed before its share was in. The first abort wins; callable from any thread,
 * the page's main thread included (it only notifies, never waits).
 */
export function abortShared(b: SharedReduceBuffers, rank: number, died: boolean): void {
  const sync = new Int32Array(b.sync);
  Atomics.compareExchange(sync, ABORT, 0, died ? rank + 1 : -(rank + 1));
  Atomics.notify(sync, GENERATION);
}

/** The abort word: null while the reduction is not aborted. */
export function sharedAbort(b: SharedReduceBuffers): SharedAbort | null {
  const word = Atomics.load(new Int32Array(b.sync), ABORT);
  return word === 0 ? null : { rank: Math.abs(word) - 1, died: word > 0 };
}

/** Ready for the next step: no arrivals, no abort. Only while no rank is inside the reduction. */
export function resetShared(b: SharedReduceBuffers): void {
  const sync = new Int32Array(b.sync);
  Atomics.store(sync, ARRIVALS, 0);
  Atomics.store(sync, ABORT, 0);
}

function throwIfSharedAborted(b: SharedReduceBuffers, rank: number): void {
  const peer = sharedAbort(b);
  if (peer) throw new SharedReduceAborted(rank, peer);
}

/**
 * Blocks until all N ranks arrive; throws a SharedReduceAborted as soon as the reduction is
 * aborted (a peer died or failed), and a plain error after timeoutMs (a rank never came and
 * nobody said why).
 */
export function barrier(b: SharedReduceBuffers, rank: number, timeoutMs: number): void {
  const sync = new Int32Array(b.sync);
  throwIfSharedAborted(b, rank); // aborted before this rank arrived: it does not arrive
  const generation = Atomics.load(sync, GENERATION);
  if (Atomics.add(sync, ARRIVALS, 1) === b.ranks - 1) {
    Atomics.store(sync, ARRIVALS, 0);
    Atomics.add(sync, GENERATION, 1);
    Atomics.notify(sync, GENERATION);
    return;
  }
  const deadline = performance.now() + timeoutMs;
  while (Atomics.load(sync, GENERATION) === generation) {
    throwIfSharedAborted(b, rank);
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`rank ${rank}: the shared-memory gradient reduction timed out after ${timeoutMs} ms waiting for the other ranks`);
    Atomics.wait(sync, GENERATION, generation, Math.min(left, ABORT_POLL_MS));
  }
}

/** Parameter range [start, end) that rank r sums. */
export function shard(params: number, rank: number, ranks: number): [number, number] {
  const per = Math.ceil(params / ranks);
  return [Math.min(params, rank * per), Math.min(params, (rank + 1) * per)];
}

/** Writes this rank's share, sums its shard over all rows, and returns the full sum [P] (a copy). */
export function reduceShared(b: SharedReduceBuffers, rank: number, share: Float32Array, timeoutMs = 120_000): Float32Array {
  if (share.length !== b.params) throw new Error(`rank ${rank}: gradient of ${share.length} values, the reduction expects ${b.params}`);
  const rows = new Float32Array(b.grads);
  rows.set(share, rank * b.params);
  barrier(b, rank, timeoutMs);
  const sum = sharedSum(b);
  const [start, end] = shard(b.params, rank, b.ranks);
  for (let i = start; i < end; i++) {
    let acc = 0;
    for (let r = 0; r < b.ranks; r++) acc = Math.fround(acc + rows[r * b.params + i]);
    sum[i] = acc;
  }
  barrier(b, rank, timeoutMs);
  return sum.slice();
}

// Gradient reduction in shared memory: no round trip through the main context. Each rank writes
// its share of dL/dθ into its own row of a SharedArrayBuffer, waits at a barrier, sums one shard
// of the parameter axis over all rows (in rank order 0..N-1, the same order as the star
// reduction, so the sum is bit-identical), waits again, and reads the full sum. Needs a thread
// that may block (Atomics.wait): Web Workers and worker_threads, not the page's main thread.

export interface SharedReduceBuffers {
  /** Float32 [(N + 1) * P]: row r = rank r's share, row N = the sum. */
  grads: SharedArrayBuffer;
  /** Int32 [2]: arrivals at the barrier, barrier generation. */
  sync: SharedArrayBuffer;
  ranks: number;
  params: number;
}

export function createSharedReduce(ranks: number, params: number): SharedReduceBuffers {
  return { grads: new SharedArrayBuffer(4 * (ranks + 1) * params), sync: new SharedArrayBuffer(8), ranks, params };
}

/** [P] view of the summed gradient (row N). */
export function sharedSum(b: SharedReduceBuffers): Float32Array {
  return new Float32Array(b.grads, 4 * b.ranks * b.params, b.params);
}

/** Blocks until all N ranks arrive; throws after timeoutMs (a rank died or never came). */
export function barrier(b: SharedReduceBuffers, rank: number, timeoutMs: number): void {
  const sync = new Int32Array(b.sync);
  const generation = Atomics.load(sync, 1);
  if (Atomics.add(sync, 0, 1) === b.ranks - 1) {
    Atomics.store(sync, 0, 0);
    Atomics.add(sync, 1, 1);
    Atomics.notify(sync, 1);
    return;
  }
  const deadline = performance.now() + timeoutMs;
  while (Atomics.load(sync, 1) === generation) {
    const left = deadline - performance.now();
    if (left <= 0 || Atomics.wait(sync, 1, generation, left) === 'timed-out') {
      throw new Error(`rank ${rank}: the shared-memory gradient reduction timed out after ${timeoutMs} ms waiting for the other ranks`);
    }
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

// The shared-memory reduction's barrier and its abort (src/core/shared-reduce.ts), with real
// blocking threads: a worker_threads rank waits in Atomics.wait while this thread plays the other
// rank, the one that dies, or the main context that learns of the death and aborts. A waiter
// released by the abort throws a SharedReduceAborted at once (the barrier's timeout stays at its
// normal 120 s), a rank arriving after it throws without arriving, a waiter at the second barrier
// gets no sum, and after resetShared() the barrier and the sum work again.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { abortShared, barrier, createSharedReduce, reduceShared, resetShared, sharedAbort, SHARED_REDUCE_ABORTED, SharedReduceAborted, type SharedReduceBuffers } from './shared-reduce.ts';

/** The barrier's normal timeout (reduceShared's default): every wait here is far shorter, or the test fails. */
const TIMEOUT_MS = 120_000;
/** An abort must release a waiter well within this (a behaviour bound, far below the timeout; not a speed test). */
const RELEASED_WITHIN_MS = 10_000;

interface Outcome {
  ok: boolean;
  sum?: number[];
  name?: string;
  message?: string;
  /** How long the call blocked in the worker (ms). */
  ms: number;
}

// The worker requires this TypeScript module through tsx's require hook (worker_threads takes no --import).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
require(workerData.tsx).register();
const m = require(workerData.module);
const t0 = performance.now();
try {
  const sum = workerData.share ? Array.from(m.reduceShared(workerData.b, workerData.rank, new Float32Array(workerData.share), workerData.timeoutMs)) : (m.barrier(workerData.b, workerData.rank, workerData.timeoutMs), undefined);
  parentPort.postMessage({ ok: true, sum, ms: performance.now() - t0 });
} catch (e) {
  parentPort.postMessage({ ok: false, name: e.name, message: e.message, ms: performance.now() - t0 });
}
`;

const workers: Worker[] = [];
afterAll(() => Promise.all(workers.map((w) => w.terminate())));

/** Rank `rank` in a worker thread: barrier() alone, or reduceShared() of `share`. Resolves with what it returned or threw. */
function rankThread(b: SharedReduceBuffers, rank: number, share?: number[]): Promise<Outcome> {
  const require = createRequire(import.meta.url);
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { b, rank, share, timeoutMs: TIMEOUT_MS, tsx: require.resolve('tsx/cjs/api'), module: fileURLToPath(new URL('./shared-reduce.ts', import.meta.url)) },
  });
  workers.push(worker);
  return new Promise((resolve, reject) => {
    worker.on('message', (m: Outcome) => resolve(m));
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`rank ${rank}'s thread exited (code ${code}) without an outcome`)));
  });
}

/** Waits (without blocking this thread) until `n` ranks have arrived at the barrier; fails if the rank thread ended first. */
async function arrivals(b: SharedReduceBuffers, n: number, thread: Promise<Outcome>): Promise<void> {
  const sync = new Int32Array(b.sync);
  const seen: { ended: Outcome | Error | null } = { ended: null };
  thread.then((o) => (seen.ended = o), (e: Error) => (seen.ended = e));
  const t0 = Date.now();
  while (Atomics.load(sync, 0) !== n) {
    const ended = seen.ended;
    if (ended) throw new Error(`the rank thread ended before ${n} arrival(s): ${JSON.stringify(ended instanceof Error ? ended.message : ended)}`);
    if (Date.now() - t0 > 60_000) throw new Error(`${n} arrival(s) never came (${Atomics.load(sync, 0)})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the shared-memory barrier', () => {
  it('releases a waiter at once when the reduction is aborted (a peer died), fails later arrivals, and works again after reset', async () => {
    const b = createSharedReduce(2, 5);
    const waiter = rankThread(b, 0);
    await arrivals(b, 1, waiter); // rank 0 blocks in Atomics.wait for rank 1
    abortShared(b, 1, true); // the main context learned that rank 1's worker died
    const released = await waiter;
    expect(released.ok).toBe(false);
    expect(released.name).toBe(SHARED_REDUCE_ABORTED);
    expect(released.message).toMatch(/^rank 0: a peer rank \(rank 1\) died during the shared-memory gradient reduction/);
    expect(released.ms).toBeLessThan(RELEASED_WITHIN_MS);
    expect(sharedAbort(b)).toEqual({ rank: 1, died: true });
    // A rank arriving after the abort fails at once, without arriving (it would otherwise block this thread).
    expect(() => barrier(b, 1, TIMEOUT_MS)).toThrow(SharedReduceAborted);
    // A second abort does not overwrite the first one's reason.
    abortShared(b, 0, false);
    expect(sharedAbort(b)).toEqual({ rank: 1, died: true });

    resetShared(b);
    expect(sharedAbort(b)).toBeNull();
    expect(Array.from(new Int32Array(b.sync).subarray(0, 1))).toEqual([0]); // no arrivals left over from the aborted wait
    // Both ranks reduce again: the sum of their shares, in each.
    const shares = [[1, 2, 3, 4, 5], [10, 20, 30, 40, 50]];
    const other = rankThread(b, 0, shares[0]);
    const mine = reduceShared(b, 1, new Float32Array(shares[1]), TIMEOUT_MS); // blocks until the worker arrives
    const expected = [11, 22, 33, 44, 55];
    expect(Array.from(mine)).toEqual(expected);
    expect(await other).toMatchObject({ ok: true, sum: expected });
  });

  it('gives no sum to a waiter at the second barrier when a peer dies after the first, and says when a peer failed instead', async () => {
    const b = createSharedReduce(2, 4);
    const waiter = rankThread(b, 0, [1, 1, 1, 1]);
    barrier(b, 1, TIMEOUT_MS); // rank 1 wrote nothing useful and arrived at the first barrier with rank 0 ...
    await arrivals(b, 1, waiter); // ... then rank 0 summed its shard and waits at the second for rank 1, which never comes
    abortShared(b, 1, false); // rank 1's call failed (an error, a lost device) instead of dying
    const released = await waiter;
    expect(released).toMatchObject({ ok: false, name: SHARED_REDUCE_ABORTED });
    expect(released.sum).toBeUndefined();
    expect(released.message).toMatch(/a peer rank \(rank 1\) failed before its share reached the shared-memory gradient reduction/);
    expect(released.ms).toBeLessThan(RELEASED_WITHIN_MS);
  });

  it('still times out when a rank never comes and nobody aborts', () => {
    const b = createSharedReduce(2, 1);
    expect(() => barrier(b, 0, 120)).toThrow(/rank 0: the shared-memory gradient reduction timed out after 120 ms/);
  });
});

// The one rank wrapper, used by every transport (Web Worker, worker_threads, in-process): per call
// a timeout, crash detection, error context (which rank, which call; the rank's own error with
// its name, message and stack as the cause) and, for worker transports, transfer of every buffer.
// A worker rank also remembers its last init so it can be restarted in place: a fresh worker with
// the same rank index, tile source and shared-reduce buffers (src/lab/recovery.ts then restores
// the weights and optimizer state of a healthy replica).
import { callRank, rankFrom, type RankApi, type RankInfo, type RankInit, type RankMethod } from '../core/protocol.ts';
import { DEVICE_LOST_ERROR, DeviceLost, RankCrashed, RankError } from '../core/faults.ts';
import { abortShared, sharedAbort, SHARED_REDUCE_ABORTED, type SharedReduceBuffers } from '../core/shared-reduce.ts';

/** How long one rank call may take before its worker is presumed dead (a step of a large encoder on a slow device can take minutes). */
export const RANK_TIMEOUT_MS = 10 * 60_000;
/** Shorter limit for dispose: a dead worker must not block a stop. */
export const RANK_DISPOSE_TIMEOUT_MS = 5000;

export interface GuardOptions {
  /** Milliseconds before a call counts as failed (default RANK_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Limit for dispose (default RANK_DISPOSE_TIMEOUT_MS). */
  disposeTimeoutMs?: number;
}

/** Why a worker is gone, as its transport saw it ("exited with code 1", "error event: ..."). */
export class WorkerDied extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'WorkerDied';
  }
}

/** A rank error in the vocabulary of src/core/faults.ts: a dead worker, a lost device, or any other failure with its context. */
export function rankErrorOf(index: number, method: string, e: unknown): RankError {
  if (e instanceof RankError) return e; // already says where (an inner wrapper, a timeout)
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof WorkerDied) return new RankCrashed(index, method, message, { cause: e });
  if (e instanceof Error && e.name === DEVICE_LOST_ERROR) return new DeviceLost(index, method, message, { cause: e });
  return new RankError(index, method, message, { cause: e });
}

/** Runs one rank call under the timeout for `method`; any failure comes out as a RankError (or a fault). */
export async function guardCall<T>(index: number, method: RankMethod, options: GuardOptions, work: () => Promise<T>): Promise<T> {
  const limit = method === 'dispose' ? options.disposeTimeoutMs ?? RANK_DISPOSE_TIMEOUT_MS : options.timeoutMs ?? RANK_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RankError(index, method, `no answer within ${Math.round(limit / 1000)} s (the worker may have crashed or run out of memory)`)), limit);
  });
  try {
    return await Promise.race([Promise.resolve().then(work), timeout]);
  } catch (e) {
    throw rankErrorOf(index, method, e);
  } finally {
    clearTimeout(timer);
  }
}

/** What a worker transport supplies for one worker. */
export interface RankLink {
  /** Sends one call (its buffers by transfer) and resolves with the answer. */
  send(method: RankMethod, arg: unknown): Promise<unknown>;
  /** Rejects with a WorkerDied once the worker is gone (it never resolves). */
  died: Promise<never>;
  /** Ends the worker (its `died` then rejects, if it had not; later sends fail as WorkerDied). */
  terminate(): void;
  /** Tests: ends the worker the way a crash would, so that only the transport's own detection notices (default: terminate). */
  kill?(): void;
}

/** The fault-handling side of a rank, where its transport can give it (passed through every wrapper). */
export interface RankControl {
  /** Ends the worker. */
  terminate?(): void;
  /** A fresh worker in place of this one, initialised as the last init asked, minus the weights: the caller restores those. */
  restart?(): Promise<RankInfo>;
  /** Resolves once no call of this rank is in flight (each settled, fulfilled or not). */
  settled?(): Promise<void>;
  /** Tests: ends the worker as a crash would, without telling the rank (found like any crash). */
  kill?(): void;
}

export type ControlledRank = RankApi & RankControl;
/** A rank in a worker: every control is there. */
export type WorkerRank = RankApi & Required<RankControl>;

const CONTROLS = ['terminate', 'restart', 'settled', 'kill'] as const;

/** Copies the controls of `from` onto `to` (bound to `from`). */
export function withControls<T extends RankApi>(to: T, from: RankApi): T & RankControl {
  const src = from as ControlledRank;
  const out = to as T & RankControl;
  for (const c of CONTROLS) if (src[c]) (out as unknown as Record<string, unknown>)[c] = (src[c] as (...a: unknown[]) => unknown).bind(src);
  return out;
}

/** Tracks the calls in flight so a recovery can wait until an abandoned step's calls have settled. */
class InFlight {
  private pending = new Set<Promise<unknown>>();
  track<T>(p: Promise<T>): Promise<T> {
    const settled = p.then(() => undefined, () => undefined);
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
    return p;
  }
  async settled(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }
}

/**
 * A worker rank: `open()` starts a worker and returns its link. Each call races the worker's death
 * (a dead worker never answers), runs under the timeout and fails as a RankError that names the
 * rank and call: RankCrashed when the worker died, DeviceLost when its device was lost.
 */
export function workerRank(index: number, open: () => RankLink, options: GuardOptions = {}): WorkerRank {
  let lastInit: RankInit | null = null;
  /** Links ended on purpose (terminate, restart): their death releases nobody. */
  const retired = new WeakSet<RankLink>();
  // A worker that dies unasked releases the other ranks from the shared-memory reduction at once
  // (they would otherwise wait for its share until the barrier's timeout).
  const watch = (l: RankLink) =>
    void l.died.catch(() => {
      if (!retired.has(l) && lastInit?.sharedReduce) abortShared(lastInit.sharedReduce, index, true);
    });
  let link = open();
  watch(link);
  const retire = () => {
    retired.add(link);
    link.terminate();
  };
  const flight = new InFlight();
  const rank: RankApi = rankFrom((method, arg) => {
    if (method === 'init') {
      const { weights: _weights, testFault: _fault, ...init } = arg as RankInit; // a restart restores weights itself and injects no fault again
      lastInit = init;
    }
    const current = link;
    const shared = lastInit?.sharedReduce;
    const call = guardCall(index, method, options, () => Promise.race([current.send(method, arg), current.died]).catch((e) => Promise.reject(peerFault(index, method, e, shared) ?? e)));
    // This rank's backwardApply failed (a lost device, an error, a timeout): its share will not come, release the others.
    if (method === 'backwardApply' && shared) call.catch((e) => void (isPeerAbort(e) || abortShared(shared, index, e instanceof RankCrashed && e.rank === index)));
    return flight.track(call);
  });
  return Object.assign(rank, {
    terminate: retire,
    kill: () => (link.kill ?? link.terminate)(),
    settled: () => flight.settled(),
    restart: async (): Promise<RankInfo> => {
      if (!lastInit) throw new RankError(index, 'restart', 'the rank was never initialised, so there is nothing to restart it as');
      retire();
      link = open();
      watch(link);
      return rank.init({ ...lastInit });
    },
  });
}

/** The error a rank threw because the shared-memory reduction was aborted by a peer (or that error mapped to the peer's fault). */
function isPeerAbort(e: unknown): boolean {
  const cause = (e as { cause?: unknown })?.cause;
  return [e, cause].some((x) => x instanceof Error && x.name === SHARED_REDUCE_ABORTED);
}

/**
 * A rank released from the shared-memory reduction because a peer's worker died fails as that
 * peer's RankCrashed (the one to restart; its reason says which rank saw it); released because a
 * peer's call failed otherwise, as this rank's RankError saying so. Null for any other error.
 */
function peerFault(index: number, method: string, e: unknown, shared?: SharedReduceBuffers): RankError | null {
  if (!shared || !(e instanceof Error) || e.name !== SHARED_REDUCE_ABORTED) return null;
  const peer = sharedAbort(shared);
  if (!peer?.died) return new RankError(index, method, e.message.replace(/^rank \d+: /, ''), { cause: e });
  return new RankCrashed(peer.rank, method, `seen by rank ${index}: a peer rank died during the shared-memory gradient reduction, so rank ${index} left the barrier at once and applied nothing`, { cause: e });
}

/** Guards a rank of any transport: timeout and error context per call, in-flight tracking; its controls pass through. */
export function guardedRank(rank: RankApi, index: number, options: GuardOptions = {}): ControlledRank {
  const flight = new InFlight();
  const out = withControls(rankFrom((method, arg) => flight.track(guardCall(index, method, options, () => callRank(rank, method, arg)))), rank);
  out.settled = async () => {
    await flight.settled();
    await (rank as ControlledRank).settled?.();
  };
  return out;
}

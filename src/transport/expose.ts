// Both ends of a rank over a comlink endpoint (Web Worker or worker_threads): every typed-array
// buffer of a request or a result travels by transfer instead of being copied. The methods come
// from RANK_METHODS, never listed here. The main side's link (send, died, terminate) goes into the
// one rank wrapper, src/transport/rank-wrapper.ts; the worker side reports a lost WebGPU device as
// a DeviceLostError and honours the test-only fault injection of RankInit.testFault (exit, throw,
// device-lost, oom).
import * as Comlink from 'comlink';
import { callRank, rankFrom, type RankApi, type RankInit, type RankMethod } from '../core/protocol.ts';
import { DEVICE_LOST_ERROR, type TestFault } from '../core/faults.ts';
import type { RankLink } from './rank-wrapper.ts';

/** The ArrayBuffers inside a request or result (one level deep: the protocol's messages are flat). */
export function buffersOf(value: unknown): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) return [value.buffer as ArrayBuffer];
  if (!value || typeof value !== 'object') return [];
  const out = new Set<ArrayBuffer>();
  for (const v of Object.values(value)) if (ArrayBuffer.isView(v) && v.buffer instanceof ArrayBuffer) out.add(v.buffer);
  return [...out];
}

/** Marks a message's buffers for transfer (plain values pass as they are). */
const transferring = <T>(value: T): T => (value && typeof value === 'object' ? Comlink.transfer(value, buffersOf(value)) : value);

/** Wraps each method so its result travels by transfer. */
export function transferringApi(api: RankApi): RankApi {
  return rankFrom(async (method, arg) => transferring(await callRank(api, method, arg)));
}

/** What the worker's runtime offers for faults: its WebGPU device's loss, and the test hooks. */
export interface RankHooks {
  /** The current WebGPU device's loss: resolves with the reason once it is lost; null without a device. */
  deviceLost?(): Promise<string> | null;
  /** Tests: destroys the current WebGPU device (as a loss would take it). */
  destroyDevice?(): void;
  /** Tests: ends the worker's thread (process.exit in Node). */
  exit?(code: number): void;
}

function deviceLostError(reason: string): Error {
  const e = new Error(`${reason}; its tensors are gone, the rank must be restarted`);
  e.name = DEVICE_LOST_ERROR;
  return e;
}

/**
 * The rank's side of the fault model: a call on a device that is lost (before, during or after
 * the call) fails with a DeviceLostError instead of answering with what a dead device computed,
 * and a test's RankInit.testFault is injected at its call.
 */
export function faultAwareApi(api: RankApi, hooks: RankHooks = {}): RankApi {
  let fault: TestFault | undefined;
  const counts = new Map<string, number>();
  let lostReason: string | null = null;
  const watch = (lost: Promise<string> | null | undefined) => void lost?.then((reason) => (lostReason = reason));
  return rankFrom(async (method: RankMethod, arg: unknown) => {
    if (method === 'init') {
      const { testFault, ...init } = arg as RankInit;
      fault = testFault;
      counts.clear();
      lostReason = null;
      const info = await callRank(api, method, init);
      watch(hooks.deviceLost?.());
      return info;
    }
    if (lostReason) throw deviceLostError(lostReason);
    counts.set(method, (counts.get(method) ?? 0) + 1);
    if (fault && fault.call === method && fault.nth === counts.get(method)) {
      const f = fault;
      fault = undefined;
      if (f.kind === 'exit') hooks.exit ? hooks.exit(70) : (globalThis as { close?: () => void }).close?.();
      if (f.kind === 'throw') {
        setTimeout(() => {
          throw new Error(`test fault: uncaught error in the rank's worker during ${method}`);
        });
        return new Promise(() => undefined); // the call never answers: the worker is going down
      }
      if (f.kind === 'device-lost') hooks.destroyDevice?.();
      if (f.kind === 'oom') exhaustHeap();
    }
    const lost = hooks.deviceLost?.();
    const onLoss = lost?.then((reason) => Promise.reject(deviceLostError(reason)));
    onLoss?.catch(() => undefined);
    try {
      const out = await (onLoss ? Promise.race([callRank(api, method, arg), onLoss]) : callRank(api, method, arg));
      if (lostReason) throw deviceLostError(lostReason); // computed on a device that was lost meanwhile
      return out;
    } catch (e) {
      // A lost device makes tfjs fail in its own words: say what happened instead.
      const reason = lost ? await Promise.race([lost, new Promise<null>((r) => setTimeout(() => r(null), 100))]) : null;
      if (reason) throw deviceLostError(reason);
      throw e;
    }
  });
}

/**
 * Tests only (TestFault 'oom'): allocates until this thread's V8 heap is exhausted, synchronously,
 * as a runaway allocation would; never returns. Arrays of small integers, 256 KiB each, all kept.
 */
function exhaustHeap(): never {
  const kept: number[][] = [];
  for (;;) kept.push(new Array<number>(1 << 16).fill(kept.length & 0xff));
}

export function exposeRank(api: RankApi, endpoint?: Comlink.Endpoint, hooks?: RankHooks): void {
  Comlink.expose(transferringApi(faultAwareApi(api, hooks)), endpoint);
}

/** The main side of a comlink rank: requests transfer their buffers too. */
export function comlinkSend(remote: Comlink.Remote<RankApi>): RankLink['send'] {
  return (method, arg) => (remote[method] as unknown as (a?: unknown) => Promise<unknown>)(transferring(arg));
}

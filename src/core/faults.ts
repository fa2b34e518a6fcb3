// Rank faults, typed: the one vocabulary the transports, the engine and the training loop share.
// A RankError says where a rank call failed ("rank 1, backward: ..."), with the rank's own error
// (its name, message and stack, as the transport delivered them) as its `cause`. Two kinds of it
// are faults the run survives (src/lab/recovery.ts): the rank's worker died (RankCrashed: an
// error event, a message that could not be read, an exit, out of memory) or its WebGPU device was
// lost (DeviceLost). Either way the step in flight is abandoned and the rank restarts from a
// healthy replica.

export class RankError extends Error {
  /** `cause`: the rank's own error (its name, message and stack, as the transport delivered them). */
  constructor(readonly rank: number, readonly call: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`rank ${rank}, ${call}: ${reason}`, options);
    this.name = 'RankError';
  }
}

/** The rank's worker is gone (error event, messageerror, exit, termination, out of memory). */
export class RankCrashed extends RankError {
  readonly fault = 'crashed' as const;
  /** performance.now() in the main context when the death was noticed. */
  readonly detectedAt = performance.now();
  constructor(rank: number, call: string, reason: string, options?: { cause?: unknown }) {
    super(rank, call, `the rank's worker died: ${reason}`, options);
    this.name = 'RankCrashed';
  }
}

/** The rank's WebGPU device was lost (GPUDevice.lost resolved): its tensors are gone with it. */
export class DeviceLost extends RankError {
  readonly fault = 'device-lost' as const;
  readonly detectedAt = performance.now();
  constructor(rank: number, call: string, reason: string, options?: { cause?: unknown }) {
    super(rank, call, `the rank's WebGPU device was lost: ${reason}`, options);
    this.name = 'DeviceLost';
  }
}

export type RankFault = RankCrashed | DeviceLost;

export function isRankFault(e: unknown): e is RankFault {
  return e instanceof RankCrashed || e instanceof DeviceLost;
}

/** The name a rank gives the error it throws when its device is lost (it crosses threads by name). */
export const DEVICE_LOST_ERROR = 'DeviceLostError';

/**
 * A fault injected on purpose, honoured only when a test asks for it at init (RankInit.testFault):
 * at the `nth` call (1-based, counted from init) of `call`, the rank's worker
 * 'exit's (process.exit; the browser has no exit, see 'throw'), 'throw's an uncaught error outside
 * any call (the worker's error event), destroys its WebGPU device ('device-lost') and goes on, or
 * allocates until its V8 heap is exhausted ('oom': Node ends the worker with
 * ERR_WORKER_OUT_OF_MEMORY; Chromium takes the whole renderer down, docs/DESIGN.md 4.1).
 */
export interface TestFault {
  kind: 'exit' | 'throw' | 'device-lost' | 'oom';
  call: 'encode' | 'backward' | 'apply' | 'backwardApply';
  nth: number;
}

/**
 * Why a rank could not read a slide's tiles while encoding it (its tile source threw a SlideError:
 * the file has gone, a tile does not decode), or null for any other failure (a crashed rank, a
 * bug, an abort).
 */
export function slideReadFailure(e: unknown): string | null {
  const cause = (e as { cause?: { name?: string; code?: string } })?.cause;
  if (!(e instanceof RankError) || e.call !== 'encode' || cause?.name !== 'SlideError' || cause.code === 'aborted') return null;
  if (/abort/i.test(e.reason)) return null;
  return e.reason;
}

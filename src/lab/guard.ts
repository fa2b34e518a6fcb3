// Wraps each rank so a failure says where it happened ("rank 1, encode: ...") and a rank that
// stops answering (a crashed worker never replies) fails after a timeout instead of hanging.
import type { RankApi } from '../core/protocol.ts';

export class RankError extends Error {
  constructor(readonly rank: number, readonly call: string, readonly reason: string) {
    super(`rank ${rank}, ${call}: ${reason}`);
    this.name = 'RankError';
  }
}


export interface GuardOptions {
  /** Milliseconds before a call counts as failed (the rank's worker is presumed dead). */
  timeoutMs: number;
  /** Shorter limit for dispose (a dead worker must not block a stop). */
  disposeTimeoutMs?: number;
}

export function guardRank<R extends RankApi>(rank: R, index: number, options: GuardOptions): RankApi & { terminate?: () => void } {
  const out = {} as Record<string, unknown>;
  // Every method the rank has (the protocol grows: prefetch, backwardApply, ...), except terminate.
  const methods = new Set<string>();
  for (let o: object | null = rank; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const k of Object.getOwnPropertyNames(o)) if (k !== 'constructor' && k !== 'terminate' && typeof (rank as Record<string, unknown>)[k] === 'function') methods.add(k);
  }
  for (const m of methods) {
    out[m] = (arg: never) => {
      const limit = m === 'dispose' ? options.disposeTimeoutMs ?? 5000 : options.timeoutMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RankError(index, m, `no answer within ${Math.round(limit / 1000)} s (the worker may have crashed or run out of memory)`)), limit);
      });
      const call = Promise.resolve().then(() => ((rank as Record<string, unknown>)[m] as (a: never) => Promise<unknown>).call(rank, arg)).catch((e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        throw new RankError(index, m, message);
      });
      return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
    };
  }
  const t = (rank as { terminate?: () => void }).terminate;
  if (t) out.terminate = () => t.call(rank);
  return out as unknown as RankApi & { terminate?: () => void };
}

export function terminateAll(ranks: readonly RankApi[]): void {
  for (const r of ranks) (r as { terminate?: () => void }).terminate?.();
}

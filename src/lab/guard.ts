// Wraps each rank so a failure says where it happened ("rank 1, encode: ...") and a rank that
// stops answering (a crashed worker never replies) fails after a timeout instead of hanging.
// Transfer and worker-death detection live in the transport (src/transport/expose.ts).
import { callRank, rankFrom, type RankApi } from '../core/protocol.ts';

export class RankError extends Error {
  /** `cause`: the rank's own error (its name, message and stack, as the transport delivered them). */
  constructor(readonly rank: number, readonly call: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`rank ${rank}, ${call}: ${reason}`, options);
    this.name = 'RankError';
  }
}

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

export function guardRank(rank: RankApi, index: number, options: GuardOptions = {}): RankApi & { terminate?: () => void } {
  const out: RankApi & { terminate?: () => void } = rankFrom((method, arg) => {
    const limit = method === 'dispose' ? options.disposeTimeoutMs ?? RANK_DISPOSE_TIMEOUT_MS : options.timeoutMs ?? RANK_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RankError(index, method, `no answer within ${Math.round(limit / 1000)} s (the worker may have crashed or run out of memory)`)), limit);
    });
    const call = Promise.resolve()
      .then(() => callRank(rank, method, arg))
      .catch((e: unknown) => {
        throw new RankError(index, method, e instanceof Error ? e.message : String(e), { cause: e });
      });
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  });
  const t = (rank as { terminate?: () => void }).terminate;
  if (t) out.terminate = () => t.call(rank);
  return out;
}

export function terminateAll(ranks: readonly RankApi[]): void {
  for (const r of ranks) (r as { terminate?: () => void }).terminate?.();
}

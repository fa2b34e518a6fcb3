// Both ends of a rank over a comlink endpoint (Web Worker or worker_threads): every typed-array
// buffer of a request or a result travels by transfer instead of being copied, and a worker that
// dies fails the calls waiting on it. The methods come from RANK_METHODS, never listed here.
import * as Comlink from 'comlink';
import { callRank, rankFrom, type RankApi, type RankMethod } from '../core/protocol.ts';

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

export function exposeRank(api: RankApi, endpoint?: Comlink.Endpoint): void {
  Comlink.expose(transferringApi(api), endpoint);
}

export type RemoteRank = RankApi & { terminate(): void };

/**
 * The main side of a remote rank: a RankApi whose requests transfer their buffers too.
 * `terminate` ends the worker (used for abort and dispose); `died`, when the transport can tell,
 * rejects once the worker is gone, and every call races it (a dead worker never answers).
 */
export function remoteRank(remote: Comlink.Remote<RankApi>, terminate: () => void, died?: Promise<never>): RemoteRank {
  died?.catch(() => undefined);
  const send = (method: RankMethod, arg: unknown) => (remote[method] as unknown as (a?: unknown) => Promise<unknown>)(transferring(arg));
  const rank = rankFrom(died ? (method, arg) => Promise.race([send(method, arg), died]) : send);
  return Object.assign(rank, { terminate });
}

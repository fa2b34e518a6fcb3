// Exposes a RankApi over a comlink endpoint (Web Worker or worker_threads), transferring every
// typed-array buffer of the results instead of copying it.
import * as Comlink from 'comlink';
import type { RankApi } from '../core/protocol.ts';

/** The ArrayBuffers inside a result (one level deep: the protocol's results are flat). */
export function buffersOf(value: unknown): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) return [value.buffer as ArrayBuffer];
  if (!value || typeof value !== 'object') return [];
  const out = new Set<ArrayBuffer>();
  for (const v of Object.values(value)) if (ArrayBuffer.isView(v) && v.buffer instanceof ArrayBuffer) out.add(v.buffer);
  return [...out];
}

/** Wraps each method so its result travels by transfer. */
export function transferringApi(api: RankApi): RankApi {
  const wrapped = {} as Record<string, unknown>;
  for (const key of ['init', 'encode', 'prefetch', 'backward', 'apply', 'backwardApply', 'getWeights', 'setWeights', 'getOptimizerState', 'setOptimizerState', 'memory', 'dispose'] as const) {
    wrapped[key] = async (arg: never) => {
      const result = await (api[key] as (a: never) => Promise<unknown>).call(api, arg);
      return result && typeof result === 'object' ? Comlink.transfer(result, buffersOf(result)) : result;
    };
  }
  return wrapped as unknown as RankApi;
}

export function exposeRank(api: RankApi, endpoint?: Comlink.Endpoint): void {
  Comlink.expose(transferringApi(api), endpoint);
}

/**
 * The main side of a remote rank: a RankApi whose requests transfer their buffers too.
 * `terminate` ends the worker (used for abort and dispose).
 */
export function remoteRank(remote: Comlink.Remote<RankApi>, terminate: () => void): RankApi & { terminate(): void } {
  const send = <K extends keyof RankApi>(key: K) => (arg: Parameters<RankApi[K]>[0]) =>
    (remote[key] as unknown as (a: unknown) => Promise<unknown>)(arg && typeof arg === 'object' ? Comlink.transfer(arg, buffersOf(arg)) : arg);
  return {
    init: send('init') as RankApi['init'],
    encode: send('encode') as RankApi['encode'],
    prefetch: send('prefetch') as RankApi['prefetch'],
    backward: send('backward') as RankApi['backward'],
    apply: send('apply') as RankApi['apply'],
    backwardApply: send('backwardApply') as RankApi['backwardApply'],
    getWeights: () => remote.getWeights() as Promise<Float32Array>,
    setWeights: send('setWeights') as RankApi['setWeights'],
    getOptimizerState: () => remote.getOptimizerState() as ReturnType<RankApi['getOptimizerState']>,
    setOptimizerState: send('setOptimizerState') as RankApi['setOptimizerState'],
    memory: () => remote.memory() as Promise<{ numTensors: number; numBytes: number }>,
    dispose: () => remote.dispose() as Promise<void>,
    terminate,
  };
}

// In-process ranks: the same Rank class, called directly. Used by tests and by the single-thread
// fallback; all ranks share the main context's tfjs engine and backend.
import { tf } from '../core/tf.ts';
import { Rank, type RankRuntime } from '../core/rank.ts';
import { SyntheticTiles, type TileSource, type TileSourceSpec } from '../core/tiles.ts';
import type { BackendInfo } from '../core/protocol.ts';

export function syntheticOnly(spec: TileSourceSpec): TileSource {
  if (spec.kind === 'synthetic') return new SyntheticTiles(spec.seed, spec.slides, spec.lesionFraction);
  throw new Error(`tile source '${spec.kind}' is not available in this runtime`);
}

export const currentBackend = async (): Promise<BackendInfo> => ({ backend: tf.getBackend() === 'webgpu' ? 'webgpu' : 'cpu', adapter: null });

export function inProcessRanks(n: number, makeTileSource: (spec: TileSourceSpec) => TileSource = syntheticOnly): Rank[] {
  const runtime: RankRuntime = { name: 'in-process', setupBackend: currentBackend, makeTileSource };
  return Array.from({ length: n }, () => new Rank(runtime));
}

// Browser runtime for a rank Web Worker: its own WebGPU adapter and device, or the cpu backend
// with a visible reason; tiles decoded from slide files inside the worker.
import type { Config } from '../core/config.ts';
import type { BackendInfo } from '../core/protocol.ts';
import type { RankRuntime } from '../core/rank.ts';
import { SyntheticTiles, type TileSource, type TileSourceSpec } from '../core/tiles.ts';
import { useCpu, useWebGPU } from './webgpu.ts';
import { SlideFileTiles } from './slide-tiles.ts';
import { createNativeDecoder } from '../slide/decode-native.ts';

export async function setupBrowserBackend(preference: Config['backend']): Promise<BackendInfo> {
  if (preference === 'cpu') return useCpu();
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  try {
    const info = await useWebGPU(gpu);
    if (preference === 'webgpu' && info.backend !== 'webgpu') throw new Error(`WebGPU was requested but ${info.fallbackReason}`);
    return info;
  } catch (e) {
    if (preference === 'webgpu') throw e;
    return useCpu(`WebGPU failed to start: ${(e as Error).message}`);
  }
}

export function makeBrowserTileSource(spec: TileSourceSpec): TileSource {
  if (spec.kind === 'synthetic') return new SyntheticTiles(spec.seed, spec.slides, spec.lesionFraction);
  return new SlideFileTiles(spec.slides, { decoder: createNativeDecoder() }); // the browser's JPEG decoder, JS fallback
}

export const browserRuntime: RankRuntime = { name: 'web-worker', setupBackend: setupBrowserBackend, makeTileSource: makeBrowserTileSource };

// Node runtime for ranks and scripts: the cpu backend, or real WebGPU through Dawn's Node
// bindings (npm `webgpu`). On a machine without a GPU, Dawn uses SwiftShader's Vulkan driver,
// which Debian's chromium package ships.
import { existsSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import type { Config } from '../core/config.ts';
import type { BackendInfo } from '../core/protocol.ts';
import { useCpu, useWebGPU } from './webgpu.ts';
import { SlideFileTiles } from './slide-tiles.ts';
import { fromPath } from '../slide/node-open.ts';
import type { RankRuntime } from '../core/rank.ts';
import { SyntheticTiles, type TileSource, type TileSourceSpec } from '../core/tiles.ts';
import { BlobClient, isRemoteBlobRef } from '../transport/file-blobs.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let gpu: GPU | undefined | null = null;

/**
 * The Vulkan driver environment Dawn reads. Call it on the main thread before starting rank
 * workers: a worker's process.env is its own copy, so setting it inside a worker does not reach
 * the driver loader, and Dawn there finds no adapter.
 */
export function dawnEnvironment(): void {
  if (!process.env.VK_ICD_FILENAMES && process.env.SLIDE_LAB_SWIFTSHADER !== '0' && existsSync(SWIFTSHADER_ICD)) {
    // Without an explicit driver Dawn may pick none on a GPU-less machine; a real GPU host sets SLIDE_LAB_SWIFTSHADER=0.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  process.env.XDG_RUNTIME_DIR ??= '/tmp'; // quiets the Vulkan loader's warning on headless machines
}

/** navigator.gpu from the `webgpu` package, created once per thread; undefined if it fails. */
export async function nodeGpu(): Promise<GPU | undefined> {
  if (gpu !== null) return gpu;
  try {
    dawnEnvironment();
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    gpu = create([]) as unknown as GPU;
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } catch {
    gpu = undefined;
  }
  return gpu;
}

export async function setupNodeBackend(preference: Config['backend']): Promise<BackendInfo> {
  if (preference === 'cpu') return useCpu();
  const info = await useWebGPU(await nodeGpu());
  if (preference === 'webgpu' && info.backend !== 'webgpu') throw new Error(`WebGPU was requested but ${info.fallbackReason}`);
  return info;
}

let blobClient: BlobClient | undefined;
/** This worker's reader of the main thread's file-backed Blobs (src/transport/file-blobs.ts). */
function remoteBlobs(): BlobClient {
  const port = (workerData as { blobPort?: import('node:worker_threads').MessagePort } | null)?.blobPort;
  if (!port) throw new Error('a file-backed Blob reached a rank that has no blob port (only node-worker ranks read them)');
  return (blobClient ??= new BlobClient(port));
}

export const nodeRuntime: RankRuntime = {
  name: 'node-worker',
  setupBackend: setupNodeBackend,
  makeTileSource: (spec: TileSourceSpec): TileSource => {
    if (spec.kind === 'synthetic') return new SyntheticTiles(spec.seed, spec.slides, spec.lesionFraction);
    return new SlideFileTiles(spec.slides.map((s) => (isRemoteBlobRef(s.source) ? { ...s, source: remoteBlobs().blob(s.source) } : s)), {
      openPath: (path, decoder) => fromPath(path, { decoder }),
    });
  },
};

// The lab's browser wiring: Web Worker ranks (each its own WebGPU device), the main context's
// backend for the aggregator, IndexedDB checkpoints, and the reference's tile reader.
import type { Config } from '../core/config.ts';
import { delegateRank, type BackendInfo, type RankApi } from '../core/protocol.ts';
import type { TestFault } from '../core/faults.ts';
import { webWorkerRanks } from '../transport/web-worker.ts';
import { withControls } from '../transport/rank-wrapper.ts';
import { makeBrowserTileSource, setupBrowserBackend } from '../runtime/browser.ts';
import { onDeviceLost, useCpu } from '../runtime/webgpu.ts';
import { defaultStore } from './checkpoints.ts';
import type { MainBackend } from './presets.ts';
import { LabSession, type SessionDeps } from './session.ts';

type Adapter = GPUAdapter & { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean }; isFallbackAdapter?: boolean };

/** A software WebGPU adapter (SwiftShader, Chromium's CPU fallback). */
export function isSoftwareAdapter(adapter: Adapter): boolean {
  const info = adapter.info;
  if (info?.isFallbackAdapter ?? adapter.isFallbackAdapter) return true;
  return /swiftshader|llvmpipe|lavapipe|software/i.test([info?.vendor, info?.architecture, info?.device, info?.description].join(' '));
}

/**
 * The main context's tfjs backend: it runs only the aggregator (a few [K, 512] matrix products).
 * 'auto' picks the cpu backend when the ranks run on the cpu backend or when WebGPU here is a
 * software adapter, and WebGPU on a hardware adapter (large K wants it there).
 * Measured on SwiftShader (first-look preset, 1 epoch of 10 steps, K = 16, 2 ranks, 2 busy
 * cores; `npm run train:headless -- '#preset=first-look&epochs=1&mainBackend=webgpu|auto'`):
 * the aggregator phase took 1.9 s of a 3.7-3.9 s step on WebGPU and 0.18-0.23 s of a 2.4-2.5 s
 * step on the cpu backend; its first-step warm-up 39-41 s against 0.8 s; the whole run 131-161 s
 * against 67-70 s; losses equal within 2.4e-7.
 */
export async function setupMainBackend(ranks: Config['backend'], choice: MainBackend): Promise<BackendInfo & { why: string }> {
  if (choice === 'cpu') return { ...(await useCpu()), why: 'setting mainBackend=cpu' };
  if (choice === 'webgpu') return { ...(await setupBrowserBackend('auto')), why: 'setting mainBackend=webgpu' };
  if (ranks === 'cpu') return { ...(await useCpu()), why: 'auto: the ranks run on the cpu backend (backend=cpu)' };
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = (await gpu?.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null)) as Adapter | null | undefined;
  if (adapter && isSoftwareAdapter(adapter)) return { ...(await useCpu()), why: 'auto: WebGPU here is a software adapter (SwiftShader), slower than the cpu backend for the aggregator' };
  const info = await setupBrowserBackend('auto');
  return { ...info, why: info.backend === 'webgpu' ? 'auto: hardware WebGPU adapter' : 'auto: no WebGPU here' };
}

/**
 * Tests only: the page URL's `?testFault={"rank":1,"kind":"oom","call":"backward","nth":3}` makes
 * that rank inject the fault (RankInit.testFault) in the first run the page starts; null without it.
 */
export function testFaultOf(search = globalThis.location?.search ?? ''): (TestFault & { rank: number }) | null {
  const raw = new URLSearchParams(search).get('testFault');
  if (!raw) return null;
  const f = JSON.parse(raw) as TestFault & { rank: number };
  if (!Number.isInteger(f.rank) || !['exit', 'throw', 'device-lost', 'oom'].includes(f.kind) || !Number.isInteger(f.nth)) throw new Error(`?testFault=${raw}: want {"rank":R,"kind":"exit|throw|device-lost|oom","call":"encode|backward|apply|backwardApply","nth":N}`);
  return f;
}

/** Web Worker ranks; with a test fault, its rank injects it once (the first set of ranks only). */
function pageRanks(): (n: number) => RankApi[] {
  let fault = testFaultOf();
  return (n) => {
    const ranks = webWorkerRanks(n);
    const f = fault;
    fault = null;
    return f ? ranks.map((r, i) => (i === f.rank ? withControls(delegateRank(r, { init: (x) => r.init({ ...x, testFault: { kind: f.kind, call: f.call, nth: f.nth } }) }), r) : r)) : ranks;
  };
}

export function browserDeps(over: Partial<SessionDeps> = {}): SessionDeps {
  return {
    makeRanks: pageRanks(),
    setupMain: (ranks, main) => setupMainBackend(ranks, main),
    store: defaultStore(),
    referenceTiles: (spec) => makeBrowserTileSource(spec),
    demoUrl: '/demo/demo.json',
    ...over,
  };
}

export function createBrowserSession(hash = globalThis.location?.hash ?? ''): LabSession {
  const session = new LabSession(browserDeps(), hash);
  // The page's device (the aggregator's, with mainBackend on WebGPU): a loss stops the run and it goes on from the last checkpoint.
  onDeviceLost((reason) => void session.mainDeviceLost(reason));
  return session;
}

// The lab's browser wiring: Web Worker ranks (each its own WebGPU device), the main context's
// backend for the aggregator, IndexedDB checkpoints, and the reference's tile reader.
import { webWorkerRanks } from '../transport/web-worker.ts';
import { makeBrowserTileSource, setupBrowserBackend } from '../runtime/browser.ts';
import { defaultStore } from './checkpoints.ts';
import { LabSession, type SessionDeps } from './session.ts';

export function browserDeps(over: Partial<SessionDeps> = {}): SessionDeps {
  return {
    makeRanks: (n) => webWorkerRanks(n),
    setupMain: (backend) => setupBrowserBackend(backend),
    store: defaultStore(),
    referenceTiles: (spec) => makeBrowserTileSource(spec),
    demoUrl: '/demo/demo.json',
    ...over,
  };
}

export function createBrowserSession(hash = globalThis.location?.hash ?? ''): LabSession {
  return new LabSession(browserDeps(), hash);
}

// Test page: the engine with Web Worker ranks (each its own WebGPU device) against the
// single-graph reference in the page, on the page's own WebGPU device.
import { parseConfig } from '../../src/core/config.ts';
import { runEquivalence, type EquivalenceRow } from '../../src/core/equivalence.ts';
import { Engine } from '../../src/core/engine.ts';
import { syntheticSlides, SyntheticTiles } from '../../src/core/tiles.ts';
import { setupBrowserBackend } from '../../src/runtime/browser.ts';
import { webWorkerRanks } from '../../src/transport/web-worker.ts';
import type { BackendInfo, RankInfo } from '../../src/core/protocol.ts';
import type { StepReport } from '../../src/core/report.ts';

interface Result {
  main: BackendInfo;
  ranks: RankInfo[];
  rows: EquivalenceRow[];
  steps: StepReport[];
  crossOriginIsolated: boolean;
}

async function run(opts: { ranks: number; steps: number; backend: 'webgpu' | 'cpu'; reduction?: 'star' | 'shared'; trainSteps?: number }): Promise<Result> {
  const main = await setupBrowserBackend(opts.backend);
  const cfg = parseConfig({ seed: 3, ranks: opts.ranks, tiles: 6, tileSize: 16, microBatch: 2, backend: opts.backend, encoder: { kind: 'tiny-cnn', width: 4 } });
  const slides = syntheticSlides(4, 3, 10);
  const spec = { kind: 'synthetic' as const, seed: 3, slides };
  const workers = webWorkerRanks(opts.ranks);
  try {
    const engineOptions = { reduction: opts.reduction ?? 'star' } as const;
    const rows = await runEquivalence({ cfg, slides, ranks: workers, tileSpec: spec, referenceTiles: new SyntheticTiles(3, slides), steps: opts.steps, engineOptions });
    // A plain engine run for per-rank adapter info and timings.
    const engine = new Engine(cfg, slides, webWorkerRanks(opts.ranks), engineOptions);
    const ranks = await engine.init(spec);
    const steps: StepReport[] = [];
    for (let i = 0; i < (opts.trainSteps ?? 2); i++) steps.push(await engine.trainStep());
    for (const r of engine.ranks) (r as unknown as { terminate(): void }).terminate();
    return { main, ranks, rows, steps, crossOriginIsolated: globalThis.crossOriginIsolated };
  } finally {
    workers.forEach((w) => w.terminate());
  }
}

(window as unknown as { slideLabTest: { run: typeof run } }).slideLabTest = { run };
document.body.dataset.ready = '1';

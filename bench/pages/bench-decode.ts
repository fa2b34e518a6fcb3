// Page for `npm run bench:browser -- --only decode`: reads raw tiles of served slides (HTTP range
// requests), then times the native and the JS decode path on this page's thread and in pools of
// Web Workers (bench-decode.worker.ts) fed from a job queue (bench/lib/decode-bench.ts); and runs
// the engine on the demo slides with Web Worker ranks, prefetch on and off (criticalPath).
import { setupBrowserBackend } from '../../src/runtime/browser.ts';
import { webWorkerRanks } from '../../src/transport/web-worker.ts';
import { loadDemo } from '../../src/lab/dataset.ts';
import { benchDecodeOnCriticalPath, type BenchShape, type DecodePathRow } from '../lib/engine-bench.ts';
import { fromUrl } from '../../src/slide/source.ts';
import type { RawTile } from '../../src/slide/decode-js.ts';
import { decodeRows, describeTiles, rawTilesOf, type DecodePath, type DecodePort, type DecodeReply, type DecodeRow } from '../lib/decode-bench.ts';

export interface DecodeBenchOptions {
  /** Slide URLs, relative to the page's origin. */
  files: string[];
  paths: DecodePath[];
  pools: number[];
  tiles: number;
  reps: number;
}

export interface DecodeBenchResult {
  tileSet: ReturnType<typeof describeTiles> & { files: string[] };
  rows: DecodeRow[];
  hardwareConcurrency: number;
  userAgent: string;
}

function webPorts(n: number): DecodePort[] {
  return Array.from({ length: n }, (_, i) => {
    const w = new Worker(new URL('./bench-decode.worker.ts', import.meta.url), { type: 'module' });
    return {
      post: (job) => w.postMessage(job),
      listen: (onReply, onError) => {
        w.onmessage = (e: MessageEvent<DecodeReply>) => onReply(e.data);
        w.onerror = (e) => onError(new Error(`decode worker ${i}: ${e.message}`));
      },
      terminate: () => w.terminate(),
    };
  });
}

async function run(o: DecodeBenchOptions): Promise<DecodeBenchResult> {
  const tiles: RawTile[] = [];
  for (const f of o.files) {
    const slide = await fromUrl(new URL(f, location.href).href, { cacheTiles: 0 });
    try {
      tiles.push(...(await rawTilesOf(slide)));
    } finally {
      await slide.close();
    }
  }
  const rows: DecodeRow[] = [];
  for (const path of o.paths) rows.push(...(await decodeRows('Chromium', path, tiles, o.pools, webPorts, { tiles: o.tiles, reps: o.reps }, (s) => console.log(s))));
  return { tileSet: { ...describeTiles(tiles), files: o.files }, rows, hardwareConcurrency: navigator.hardwareConcurrency, userAgent: navigator.userAgent };
}

export interface CriticalPathOptions {
  shape: BenchShape;
  ranks: number[];
  steps: number;
  warmup: number;
}

/** Engine steps on the demo slides (public/demo) with Web Worker ranks decoding natively, prefetch on and off. */
async function criticalPath(o: CriticalPathOptions): Promise<{ rows: DecodePathRow[]; slides: number }> {
  await setupBrowserBackend(o.shape.backend); // the aggregator's backend on this page
  const demo = await loadDemo('/demo/demo.json');
  const rows: DecodePathRow[] = [];
  for (const n of o.ranks) {
    for (const prefetch of [true, false]) {
      const r = await benchDecodeOnCriticalPath(o.shape, n, o.steps, o.warmup, (m) => webWorkerRanks(m), { slides: demo.entries, tiles: demo.tileSpec }, prefetch);
      console.log(`N=${n} prefetch ${prefetch}: decode ${r.decodeMs.toFixed(1)} of ${r.stepMs.toFixed(1)} ms/step`);
      rows.push(r);
    }
  }
  return { rows, slides: demo.entries.length };
}

(window as unknown as { slideLabDecodeBench: unknown }).slideLabDecodeBench = { run, criticalPath };
document.body.dataset.ready = '1';

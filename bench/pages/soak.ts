// Page for `npm run bench:browser -- --only soak`: a long run of the lab's own Trainer (Web Worker
// ranks on WebGPU, synthetic tiles, a tiny CNN, the per-epoch validation included) that samples,
// at chosen steps, the live tensors and bytes (tf.memory()) of every rank and of this page, the
// step's wall time and, through `probe` (the bench's CDP hook: garbage collection, then the page's
// JS heap), the page heap. Nothing is asserted here: the bench prints the figures.
import { tf } from '../../src/core/tf.ts';
import { parseConfig } from '../../src/core/config.ts';
import { webWorkerRanks } from '../../src/transport/web-worker.ts';
import { loadSynthetic } from '../../src/lab/dataset.ts';
import { setupMainBackend } from '../../src/lab/browser.ts';
import { Trainer } from '../../src/lab/run.ts';

export interface SoakOptions {
  steps: number;
  ranks: number;
  /** Steps (1-based: after that many steps) at which to sample. */
  at: number[];
  /** Config overrides (lab hash keys as an object). */
  config: Record<string, unknown>;
}

export interface SoakSample {
  /** Steps done. */
  step: number;
  /** Median wall time (ms) of the steps since the previous sample (the step itself for the first). */
  stepMs: number;
  main: { numTensors: number; numBytes: number };
  ranks: { numTensors: number; numBytes: number }[];
  /** The page's used JS heap after a forced GC (bytes), from the bench's probe; null without one. */
  heap: number | null;
}

export interface SoakResult {
  samples: SoakSample[];
  config: Record<string, unknown>;
  main: { backend: string; why: string };
  ranks: { backend: string; adapter: string | null }[];
  seconds: number;
  evals: number;
  userAgent: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

async function run(o: SoakOptions): Promise<SoakResult> {
  const t0 = performance.now();
  const probe = (window as unknown as { soakProbe?: () => Promise<number> }).soakProbe;
  const cfg = parseConfig({ ...o.config, ranks: o.ranks });
  const main = await setupMainBackend(cfg.backend, 'auto');
  const data = loadSynthetic(16, cfg.seed, 32);
  const trainer = await Trainer.create({ cfg, data, makeRanks: (n) => webWorkerRanks(n), bootstrapRounds: 20 });
  const samples: SoakSample[] = [];
  const want = new Set(o.at);
  let since: number[] = [];
  let evals = 0;
  try {
    for (let done = 1; done <= o.steps && !trainer.done; done++) {
      const { report, eval: ev } = await trainer.step();
      if (ev) evals++;
      since.push(report.wallMs);
      if (!want.has(done)) continue;
      const ranks = await Promise.all(trainer.ranks.map((r) => r.memory()));
      const mem = tf.memory();
      const heap = probe ? await probe() : null;
      samples.push({ step: done, stepMs: median(since), main: { numTensors: mem.numTensors, numBytes: mem.numBytes }, ranks, heap });
      console.log(`soak step ${done}: ${median(since).toFixed(0)} ms/step, main ${mem.numTensors} tensors, ranks ${ranks.map((r) => r.numTensors).join('/')} tensors`);
      since = [];
    }
  } finally {
    await trainer.dispose();
  }
  return {
    samples,
    config: cfg as unknown as Record<string, unknown>,
    main: { backend: main.backend, why: main.why },
    ranks: trainer.rankInfo.map((r) => ({ backend: r.backend, adapter: r.adapter ? `${r.adapter.vendor} ${r.adapter.architecture}`.trim() : null })),
    seconds: (performance.now() - t0) / 1000,
    evals,
    userAgent: navigator.userAgent,
  };
}

(window as unknown as { slideLabSoak: unknown }).slideLabSoak = { run };
document.body.dataset.ready = '1';

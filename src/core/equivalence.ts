// Gradient equivalence (the paper's central claim): N ranks with gather/scatter and pseudo-loss
// against the single-graph reference, from the same seed, step by step. Produces the data of the
// paper's figure: |loss difference| and normalised L1 differences of parameters and gradients
// of the first encoder layer, a deep encoder layer and the aggregator's classifier.
import type { Config } from './config.ts';
import { Engine, type EngineOptions } from './engine.ts';
import { encoderSpecs, trackedEncoderLayers } from './models/encoder.ts';
import { TRACKED_AGGREGATOR_LAYER } from './models/aggregator.ts';
import { unpack } from './params.ts';
import { ReferenceTrainer } from './reference.ts';
import { normalizedL1 } from './metrics.ts';
import type { RankApi } from './protocol.ts';
import type { SlideEntry } from './sampler.ts';
import type { TileSource, TileSourceSpec } from './tiles.ts';

/** float32 sums in another order differ by rounding; these bounds are far above that and far below any real bug. */
export const TOLERANCE = { loss: 1e-4, param: 1e-4, grad: 1e-4 } as const;

export interface EquivalenceRow {
  ranks: number;
  step: number;
  lossReference: number;
  lossRanks: number;
  lossDiff: number;
  /** Normalised L1 difference of parameters after the step, per tracked layer. */
  param: Record<string, number>;
  /** Normalised L1 difference of this step's gradients, per tracked layer. */
  grad: Record<string, number>;
  pass: boolean;
  /** Wall time of the N-rank step and of the reference step, ms. */
  stepMs: number;
  referenceMs: number;
}

export function trackedLayers(cfg: Config): string[] {
  return [...trackedEncoderLayers(cfg.encoder), TRACKED_AGGREGATOR_LAYER];
}

export function rowPasses(row: Pick<EquivalenceRow, 'lossDiff' | 'param' | 'grad'>): boolean {
  return (
    row.lossDiff <= TOLERANCE.loss &&
    Object.values(row.param).every((v) => v <= TOLERANCE.param) &&
    Object.values(row.grad).every((v) => v <= TOLERANCE.grad)
  );
}

export interface EquivalenceRun {
  cfg: Config;
  slides: SlideEntry[];
  ranks: RankApi[];
  tileSpec: TileSourceSpec;
  /** The reference reads tiles itself, in the main context. */
  referenceTiles: TileSource;
  steps: number;
  signal?: AbortSignal;
  onRow?: (row: EquivalenceRow) => void;
  engineOptions?: EngineOptions;
}

export async function runEquivalence(run: EquivalenceRun): Promise<EquivalenceRow[]> {
  const { cfg } = run;
  const engine = new Engine(cfg, run.slides, run.ranks, { ...run.engineOptions, keepGradients: true });
  const reference = new ReferenceTrainer(cfg, run.slides, run.referenceTiles, run.engineOptions?.encoderWeights);
  const encSpecs = encoderSpecs(cfg.encoder, cfg.tileSize);
  const layers = trackedLayers(cfg);
  const rows: EquivalenceRow[] = [];
  try {
    await engine.init(run.tileSpec);
    for (let i = 0; i < run.steps; i++) {
      if (run.signal?.aborted) throw run.signal.reason;
      const report = await engine.trainStep(run.signal);
      const t0 = performance.now();
      const ref = await reference.trainStep();
      const referenceMs = performance.now() - t0;
      const encE = unpack(encSpecs, await engine.encoderWeights());
      const encR = unpack(encSpecs, await reference.encoderWeights());
      const aggE = unpack(engine.aggSpecs, await engine.aggregatorWeights());
      const aggR = unpack(reference.aggSpecs, await reference.aggregatorWeights());
      const gradE = unpack(encSpecs, engine.lastEncoderGrad!);
      const param: Record<string, number> = {};
      const grad: Record<string, number> = {};
      for (const layer of layers) {
        const isAgg = layer.startsWith('agg.');
        param[layer] = normalizedL1((isAgg ? aggE : encE).get(layer)!, (isAgg ? aggR : encR).get(layer)!);
        grad[layer] = normalizedL1(isAgg ? engine.lastAggregatorGrads!.get(layer)! : gradE.get(layer)!, ref.grads.get(layer)!);
      }
      const partial = { ranks: cfg.ranks, step: report.step, lossReference: ref.loss, lossRanks: report.loss, lossDiff: Math.abs(ref.loss - report.loss), param, grad };
      const row = { ...partial, pass: rowPasses(partial), stepMs: report.wallMs, referenceMs };
      rows.push(row);
      run.onRow?.(row);
    }
  } finally {
    reference.dispose();
    await engine.dispose();
  }
  return rows;
}

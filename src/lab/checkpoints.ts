// Checkpoints: the weights of the aggregator and the encoder, the step, the lab hash (config and
// lab settings) and the run's history, saved to IndexedDB as training goes so a reload can resume
// where it stopped. A memory store stands in for tests and for browsers without IndexedDB.
import type { StepReport } from '../core/report.ts';
import type { AdamWState } from '../core/optim/adamw.ts';
import { attentionDim, featureDim } from '../core/config.ts';
import { aggregatorSpecs } from '../core/models/aggregator.ts';
import { encoderSpecs } from '../core/models/encoder.ts';
import type { DataSet, DataSource } from './dataset.ts';
import { exportWeights, type WeightsArtifacts } from './export.ts';
import { parseLabHash } from './presets.ts';
import type { EvalSummary, Trainer } from './run.ts';

export interface Checkpoint {
  /** 'latest' is the one a reload offers to resume. */
  id: string;
  savedAt: number;
  /** The lab hash of the run (config + lab options), e.g. "#tiles=16&ranks=2". */
  hash: string;
  data: DataSource;
  /** Optimizer steps done: the run resumes at this step. */
  step: number;
  total: number;
  aggregator: Float32Array;
  encoder: Float32Array;
  /** AdamW moments and step counts of both optimizers (absent in checkpoints of older versions). */
  optimizer?: { aggregator: AdamWState; encoder: AdamWState | null };
  /** Step reports without attention arrays, and the validation summaries. */
  steps: StepReport[];
  evals: EvalSummary[];
  /** Training slides set aside during the run (unreadable), with the step and the reason: a resumed run skips them too. */
  setAside?: { id: string; step: number; reason: string }[];
}

export interface CheckpointStore {
  save(c: Checkpoint): Promise<void>;
  load(id?: string): Promise<Checkpoint | null>;
  remove(id?: string): Promise<void>;
  /** Why checkpoints saved here do not survive a reload (no IndexedDB in this browser), when they do not. */
  readonly unavailable?: string;
}

export class MemoryCheckpointStore implements CheckpointStore {
  private items = new Map<string, Checkpoint>();
  constructor(readonly unavailable?: string) {}
  async save(c: Checkpoint): Promise<void> {
    this.items.set(c.id, structuredClone(c));
  }
  async load(id = 'latest'): Promise<Checkpoint | null> {
    const c = this.items.get(id);
    return c ? structuredClone(c) : null;
  }
  async remove(id = 'latest'): Promise<void> {
    this.items.delete(id);
  }
}

const DB = 'slide-lab';
const STORE = 'checkpoints';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

export class IdbCheckpointStore implements CheckpointStore {
  private db: Promise<IDBDatabase> | null = null;

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'id' });
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error ?? new Error('could not open IndexedDB'));
      r.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of the lab'));
    });
    return this.db;
  }

  private async tx(mode: IDBTransactionMode): Promise<IDBObjectStore> {
    return (await this.open()).transaction(STORE, mode).objectStore(STORE);
  }

  async save(c: Checkpoint): Promise<void> {
    await request((await this.tx('readwrite')).put(c));
  }
  async load(id = 'latest'): Promise<Checkpoint | null> {
    return ((await request((await this.tx('readonly')).get(id))) as Checkpoint | undefined) ?? null;
  }
  async remove(id = 'latest'): Promise<void> {
    await request((await this.tx('readwrite')).delete(id));
  }
}

export function defaultStore(): CheckpointStore {
  return typeof indexedDB === 'undefined' ? new MemoryCheckpointStore('IndexedDB is not available in this browser') : new IdbCheckpointStore();
}

/** Step reports without their attention arrays (what a checkpoint keeps). */
export function compactSteps(steps: readonly StepReport[]): StepReport[] {
  return steps.map((s) => ({ ...s, attention: { tileIndices: [], scores: [] } }));
}

/** A checkpoint of a live run at its current step (weights, both optimizers, history). */
export async function checkpointOf(t: Trainer, data: DataSet, hash: string, id = 'latest'): Promise<Checkpoint> {
  return {
    id,
    savedAt: Date.now(),
    hash,
    data: data.source,
    step: t.engine.step,
    total: t.total,
    aggregator: await t.engine.aggregatorWeights(), // [P_agg]
    encoder: await t.engine.encoderWeights(), // [P], from rank 0 (replicas are identical)
    optimizer: await t.engine.optimizerState(),
    steps: compactSteps(t.history.steps),
    evals: t.history.evals,
    setAside: setAsideOf(t, data),
  };
}

/** The run's set-aside slides with the step and reason the data set lists (SlideInfo.error: "set aside at step N: why"). */
function setAsideOf(t: Trainer, data: DataSet): Checkpoint['setAside'] {
  return [...t.engine.sampler.setAside].map((id) => {
    const m = /^set aside at step (\d+): ([\s\S]*)$/.exec(data.slides.find((s) => s.id === id)?.error ?? '');
    return { id, step: m ? Number(m[1]) : t.engine.step, reason: m ? m[2] : 'its tiles could not be read' };
  });
}

/** Puts a fresh run (same config and data) where the checkpoint left off. */
export async function applyCheckpoint(t: Trainer, c: Checkpoint): Promise<void> {
  t.engine.setAggregatorWeights(c.aggregator);
  await t.engine.setEncoderWeights(c.encoder);
  if (c.optimizer) await t.engine.setOptimizerState(c.optimizer);
  t.engine.step = c.step;
  for (const s of c.setAside ?? []) t.engine.sampler.setAside.add(s.id);
  t.history.steps.push(...c.steps);
  t.history.evals.push(...c.evals);
}

/** Why a checkpoint cannot resume on the loaded data, or null. Dropped files must be dropped again. */
export function dataMismatch(c: Checkpoint, data: DataSet | null): string | null {
  if (c.data.kind !== 'files') return null;
  const names = data?.source.kind === 'files' ? data.source.names.join('|') : '';
  if (names === c.data.names.join('|')) return null;
  return `this checkpoint trained on dropped files (${c.data.names.slice(0, 3).join(', ')}...): drop the same files again, then resume`;
}

/** A checkpoint's weights in the export format (model.json + weights.bin), for its own config. */
export function checkpointWeights(c: Checkpoint): WeightsArtifacts {
  const cfg = parseLabHash(c.hash).config;
  const aggSpecs = aggregatorSpecs(featureDim(cfg.encoder), attentionDim(cfg.aggregator));
  return exportWeights(encoderSpecs(cfg.encoder, cfg.tileSize), c.encoder, aggSpecs, c.aggregator, { hash: c.hash, step: c.step });
}

// Checkpoints: the weights of the aggregator and the encoder, the step, the lab hash (config and
// lab settings) and the run's history, saved to IndexedDB as training goes so a reload can resume
// where it stopped. A memory store stands in for tests and for browsers without IndexedDB.
import type { StepReport } from '../core/report.ts';
import type { AdamWState } from '../core/optim/adamw.ts';
import type { DataSource } from './dataset.ts';
import type { EvalSummary } from './run.ts';

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
}

export interface CheckpointStore {
  save(c: Checkpoint): Promise<void>;
  load(id?: string): Promise<Checkpoint | null>;
  remove(id?: string): Promise<void>;
}

export class MemoryCheckpointStore implements CheckpointStore {
  private items = new Map<string, Checkpoint>();
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
  return typeof indexedDB === 'undefined' ? new MemoryCheckpointStore() : new IdbCheckpointStore();
}

/** Step reports without their attention arrays (what a checkpoint keeps). */
export function compactSteps(steps: readonly StepReport[]): StepReport[] {
  return steps.map((s) => ({ ...s, attention: { tileIndices: [], scores: [] } }));
}

// One set of rank workers reused across the runs of an experiment. Starting a worker and warming
// up its WebGPU device (pipeline compilation: 15-90 s on SwiftShader) dominates short runs, so
// only the first run pays it. Between runs every replica is put back exactly where a fresh init
// leaves it: the seed's initial encoder weights [P] and a fresh AdamW state (t = 0, moments
// m = v = 0 [P]), through the RankApi's setWeights / setOptimizerState. A run on pooled ranks
// therefore computes what a run on fresh workers computes (tested in experiments.test.ts).
import type { Config } from '../core/config.ts';
import { encoderSpecs } from '../core/models/encoder.ts';
import { packInitialValues } from '../core/params.ts';
import { delegateRank, type RankApi, type RankInfo, type RankInit } from '../core/protocol.ts';
import type { TileSourceSpec } from '../core/tiles.ts';
import { terminateAll } from './guard.ts';
import type { RankControl } from '../transport/rank-wrapper.ts';

/**
 * What a replica's state depends on, minus what the experiments vary between runs: K (the
 * engine hands each rank its slots) and the frozen flag (pooled replicas always keep an optimizer;
 * a frozen run simply never calls backward or apply).
 */
export function rankKey(cfg: Config): string {
  return JSON.stringify({ ...cfg, tiles: 0, frozenEncoder: false });
}

/** [P] the encoder weights a fresh rank starts from. */
export function initialEncoderWeights(cfg: Config): Float32Array {
  return packInitialValues(encoderSpecs(cfg.encoder, cfg.tileSize), cfg.seed);
}

/** What one pooled replica was last fully initialised for. */
interface WarmReplica {
  key: string;
  tiles: TileSourceSpec;
  info: RankInfo;
}

export class RankPool {
  /** Workers started, full inits (backend set-up, warm-up) and cheap resets so far. */
  readonly stats = { started: 0, inits: 0, resets: 0 };
  private ranks: RankApi[] = [];
  /** Per pooled worker (by rank index): what its replica was last initialised for. */
  private warm: (WarmReplica | undefined)[] = [];
  /** Initial weights [P] for the current key (computed once, copied per rank: buffers are transferred). */
  private initial: { key: string; weights: Float32Array } | null = null;

  constructor(private readonly makeRanks: (n: number) => RankApi[]) {}

  /**
   * N ranks for one run (pass as Trainer.create's makeRanks). The views' init() re-initialises a
   * warm replica cheaply; their dispose() keeps the worker for the next run: terminate() ends it.
   */
  readonly lease = (n: number): RankApi[] => {
    if (this.ranks.length !== n) {
      this.terminate();
      this.ranks = this.makeRanks(n);
      this.stats.started += n;
    }
    return this.ranks.map((rank, i) => this.view(rank, i));
  };

  /** Ends every worker (at the end of the experiment, or on abort). */
  terminate(): void {
    terminateAll(this.ranks);
    this.ranks = [];
    this.warm = [];
  }

  private view(rank: RankApi, i: number): RankApi {
    const view: RankApi & RankControl = delegateRank(rank, {
      init: (init) => this.init(rank, i, init),
      // The run is over, the replica is not: the next run's init() resets it.
      dispose: async () => undefined,
    });
    // A crashed replica is restarted in place (the same pooled slot, initialised as before); the
    // worker is the pool's, so a run's terminate() does not reach it.
    const c = rank as RankApi & RankControl;
    if (c.restart) view.restart = () => c.restart!();
    if (c.settled) view.settled = () => c.settled!();
    if (c.kill) view.kill = () => c.kill!();
    return view;
  }

  private async init(rank: RankApi, i: number, init: RankInit): Promise<RankInfo> {
    const key = rankKey(init.config);
    const warm = this.warm[i];
    // Shared-memory reduction buffers belong to one engine: such a run gets a full init.
    if (warm && warm.key === key && warm.tiles === init.tiles && !init.sharedReduce) {
      await this.reset(rank, init, key);
      this.stats.resets += 1;
      return { ...warm.info, rank: init.rank };
    }
    this.warm[i] = undefined;
    const info = await rank.init({ ...init, config: { ...init.config, frozenEncoder: false } });
    this.warm[i] = { key, tiles: init.tiles, info };
    this.stats.inits += 1;
    return info;
  }

  /** Back to a fresh replica: initial (or pretrained) weights [P], AdamW t = 0 with zero moments [P]. */
  private async reset(rank: RankApi, init: RankInit, key: string): Promise<void> {
    if (init.weights) {
      // Read P first: a worker rank's setWeights transfers (detaches) the buffer.
      const p = init.weights.length;
      await rank.setWeights(init.weights);
      await rank.setOptimizerState({ t: 0, m: new Float32Array(p), v: new Float32Array(p) });
      return;
    }
    if (this.initial?.key !== key) this.initial = { key, weights: initialEncoderWeights(init.config) };
    const p = this.initial.weights.length;
    await rank.setWeights(this.initial.weights.slice());
    await rank.setOptimizerState({ t: 0, m: new Float32Array(p), v: new Float32Array(p) });
  }
}

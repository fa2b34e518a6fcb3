// Tile decode throughput: one thread, and a pool of workers fed from a job queue. The same code
// drives Node worker_threads (bench/run.ts, bench/workers/decode-bench.node.ts) and Chromium Web
// Workers (bench/pages/bench-decode*.ts); only how a worker is started differs (a DecodePort).
// Browser-safe: no Node imports here. Figures only, nothing is asserted.
import { createJsDecoder, type RawTile, type TileDecoder } from '../../src/slide/decode-js.ts';
import { createNativeDecoder, nativeDecodeAvailable } from '../../src/slide/decode-native.ts';
import type { SlideSource } from '../../src/slide/source.ts';
import { median } from './stats.ts';

/** 'native': JPEG rebuilt + createImageBitmap (browsers; falls back to JS per tile). 'js': geotiff's decoders. */
export type DecodePath = 'native' | 'js';

/** Main thread -> decode worker. */
export type DecodeJob =
  | { kind: 'load'; path: DecodePath; tiles: RawTile[] }
  | { kind: 'decode'; id: number; tiles: number[] };

/** Decode worker -> main thread. `rgb`: the decoded tiles, transferred back as a consumer would get them. */
export type DecodeReply =
  | { kind: 'loaded'; nativeAvailable: boolean }
  | { kind: 'done'; id: number; native: number; fallback: number; rgb: ArrayBuffer[]; /** ms the worker spent on the job. */ ms: number }
  | { kind: 'error'; message: string };

/** What the pool driver needs of a worker, whatever kind of thread it is. */
export interface DecodePort {
  post(job: DecodeJob): void;
  /** Installs the one reply handler. */
  listen(onReply: (r: DecodeReply) => void, onError: (e: Error) => void): void;
  terminate(): void;
}

export interface DecodeStats { native: number; fallback: number }

/** A decoder for `path` with counts of which path each tile actually took. */
export function makeDecoder(path: DecodePath): { decode: TileDecoder; stats: () => DecodeStats } {
  if (path === 'native') {
    const d = createNativeDecoder();
    return { decode: d, stats: () => ({ native: d.stats.native, fallback: d.stats.fallback }) };
  }
  const js = createJsDecoder();
  let n = 0;
  return { decode: (t, s) => (n++, js(t, s)), stats: () => ({ native: 0, fallback: n }) };
}

/**
 * The worker side: keeps the tiles it was loaded with and decodes the indices each job names.
 * `reply` posts a message, transferring the listed buffers.
 */
export function decodeWorker(reply: (r: DecodeReply, transfer?: ArrayBuffer[]) => void): (job: DecodeJob) => Promise<void> {
  let tiles: RawTile[] = [];
  let dec: ReturnType<typeof makeDecoder> | null = null;
  let queue: Promise<void> = Promise.resolve();
  // Jobs run one after another (a queued job waits), so each reply counts only its own tiles.
  return (job) => (queue = queue.then(() => run(job)));
  async function run(job: DecodeJob): Promise<void> {
    try {
      if (job.kind === 'load') {
        tiles = job.tiles;
        dec = makeDecoder(job.path);
        reply({ kind: 'loaded', nativeAvailable: nativeDecodeAvailable() });
        return;
      }
      if (!dec) throw new Error('decode job before load');
      const before = dec.stats();
      const t0 = performance.now();
      const rgb: ArrayBuffer[] = [];
      for (const i of job.tiles) rgb.push((await dec.decode(tiles[i])).buffer as ArrayBuffer); // [h, w, 3]
      const after = dec.stats();
      reply({ kind: 'done', id: job.id, native: after.native - before.native, fallback: after.fallback - before.fallback, rgb, ms: performance.now() - t0 }, rgb);
    } catch (e) {
      reply({ kind: 'error', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
    }
  }
}

/** Level-0 raw (still compressed) tiles of a slide, row by row; at most `max`. */
export async function rawTilesOf(slide: SlideSource, max = Infinity): Promise<RawTile[]> {
  const l = slide.levels[0];
  const out: RawTile[] = [];
  for (let ty = 0; ty < Math.ceil(l.height / l.tileHeight); ty++) {
    for (let tx = 0; tx < Math.ceil(l.width / l.tileWidth); tx++) {
      if (out.length >= max) return out;
      out.push(await slide.readRawTile(0, tx, ty));
    }
  }
  return out;
}

export interface DecodeRow {
  /** 'Node' or 'Chromium'. */
  where: string;
  path: DecodePath;
  /** 'calling thread' (no worker, no messages) or a pool of `workers` workers. */
  mode: 'calling thread' | 'pool';
  workers: number;
  /** Tiles decoded per timed repetition. */
  tiles: number;
  /** Median over repetitions, and every repetition's figure. */
  tilesPerSec: number;
  runs: number[];
  /** Tiles that went through the native decoder, and through the JS fallback (timed runs). */
  native: number;
  fallback: number;
  /**
   * Mean ms per tile measured inside the decoding thread (timed runs). If it grows with the pool
   * size, the workers are sharing CPU time (too few free cores), not waiting on the queue.
   */
  msPerTileInWorker: number;
}

export interface DecodeOptions {
  /** Tiles decoded per timed repetition (cycling over the tile set). */
  tiles: number;
  reps: number;
  /** Tiles per job sent to a pool worker; each worker has at most `depth` jobs in flight. */
  batch?: number;
  depth?: number;
}

const cycle = (start: number, count: number, n: number) => Array.from({ length: count }, (_, i) => (start + i) % n);

/** Decodes in the calling thread, one tile after another (the single-thread figure). */
export async function decodeInline(where: string, path: DecodePath, tiles: RawTile[], o: DecodeOptions): Promise<DecodeRow> {
  const dec = makeDecoder(path);
  for (const t of tiles) await dec.decode(t); // warm-up: codecs per level, JIT
  const before = dec.stats();
  const runs: number[] = [];
  for (let r = 0; r < o.reps; r++) {
    const t0 = performance.now();
    for (const i of cycle(0, o.tiles, tiles.length)) await dec.decode(tiles[i]);
    runs.push((o.tiles / (performance.now() - t0)) * 1000);
  }
  const after = dec.stats();
  const tps = median(runs);
  return { where, path, mode: 'calling thread', workers: 0, tiles: o.tiles, tilesPerSec: tps, runs, native: after.native - before.native, fallback: after.fallback - before.fallback, msPerTileInWorker: 1000 / tps };
}

/**
 * A pool of started workers: loads every worker with the tile set, warms each up on all of it,
 * then times `o.tiles` tiles handed out in jobs of `batch` to whichever worker has the fewest
 * jobs in flight. The clock runs on the calling thread from the first job to the last reply.
 */
export async function decodePool(where: string, path: DecodePath, ports: DecodePort[], tiles: RawTile[], o: DecodeOptions): Promise<DecodeRow> {
  const batch = o.batch ?? 4;
  const depth = o.depth ?? 2;
  const waiting = new Map<number, (r: Extract<DecodeReply, { kind: 'done' }>) => void>();
  let failed: Error | null = null;
  let fail: (e: Error) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => undefined);
  const loaded: ((r: DecodeReply) => void)[] = [];
  ports.forEach((p, w) => p.listen((r) => {
    if (r.kind === 'error') { failed = new Error(`decode worker ${w}: ${r.message}`); fail(failed); return; }
    if (r.kind === 'loaded') { loaded[w]?.(r); return; }
    waiting.get(r.id)?.(r);
    waiting.delete(r.id);
  }, (e) => { failed = e; fail(e); }));
  let nextId = 0;
  const send = (w: number, idx: number[]) => new Promise<Extract<DecodeReply, { kind: 'done' }>>((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    ports[w].post({ kind: 'decode', id, tiles: idx });
  });
  await Promise.race([Promise.all(ports.map((p, w) => new Promise((resolve) => {
    loaded[w] = resolve;
    p.post({ kind: 'load', path, tiles });
  }))), failure]);
  await Promise.race([Promise.all(ports.map((_, w) => send(w, cycle(0, tiles.length, tiles.length)))), failure]); // warm-up

  const runs: number[] = [];
  let native = 0, fallback = 0, busy = 0;
  for (let r = 0; r < o.reps; r++) {
    let handed = 0;
    const inFlight = ports.map(() => 0);
    const t0 = performance.now();
    await Promise.race([new Promise<void>((resolve) => {
      let open = 0;
      const pump = () => {
        while (handed < o.tiles) {
          const w = inFlight.indexOf(Math.min(...inFlight)); // least busy
          if (inFlight[w] >= depth) break;
          const count = Math.min(batch, o.tiles - handed);
          const idx = cycle(handed, count, tiles.length);
          handed += count;
          inFlight[w]++;
          open++;
          void send(w, idx).then((res) => {
            inFlight[w]--;
            open--;
            native += res.native;
            fallback += res.fallback;
            busy += res.ms;
            if (handed >= o.tiles && open === 0) resolve();
            else pump();
          });
        }
      };
      pump();
    }), failure]);
    runs.push((o.tiles / (performance.now() - t0)) * 1000);
  }
  if (failed) throw failed;
  return { where, path, mode: 'pool', workers: ports.length, tiles: o.tiles, tilesPerSec: median(runs), runs, native, fallback, msPerTileInWorker: busy / (o.tiles * o.reps) };
}

/** Every row for one decode path: the calling thread, then pools of each size (workers started per size). */
export async function decodeRows(where: string, path: DecodePath, tiles: RawTile[], pools: number[], start: (n: number) => DecodePort[], o: DecodeOptions, log: (s: string) => void = () => undefined): Promise<DecodeRow[]> {
  const rows: DecodeRow[] = [];
  const say = (r: DecodeRow) => {
    rows.push(r);
    log(`  ${where} ${path} ${r.mode === 'pool' ? `pool of ${r.workers}` : 'calling thread'}: ${r.tilesPerSec.toFixed(1)} tiles/s (runs ${r.runs.map((x) => x.toFixed(0)).join(', ')}; ${r.msPerTileInWorker.toFixed(1)} ms per tile in the decoding thread; native ${r.native}, JS ${r.fallback})`);
  };
  say(await decodeInline(where, path, tiles, o));
  for (const n of pools) {
    const ports = start(n);
    try {
      say(await decodePool(where, path, ports, tiles, o));
    } finally {
      for (const p of ports) p.terminate();
    }
  }
  return rows;
}

/** What the tile set is: count, sizes, colour model and compressed bytes. */
export function describeTiles(tiles: RawTile[]): { tiles: number; sizes: string[]; photometric: number[]; meanCompressedBytes: number } {
  return {
    tiles: tiles.length,
    sizes: [...new Set(tiles.map((t) => `${t.width}x${t.height}`))],
    photometric: [...new Set(tiles.map((t) => t.photometric))],
    meanCompressedBytes: Math.round(tiles.reduce((s, t) => s + t.bytes.length, 0) / Math.max(1, tiles.length)),
  };
}

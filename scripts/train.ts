// npm run train -- <preset name or URL hash> --out <dir> [--manifest <csv>] [--steps N] [--open path|blob]
// The lab's training, without a browser, for CI and scripts: N encoder ranks on worker_threads
// (each on Dawn WebGPU, npm `webgpu`, where an adapter exists, else the cpu backend; the hash's
// `backend=` decides), the aggregator on the main thread's cpu backend, slides read by the ranks
// themselves (by path, or as fs.openAsBlob file-backed Blobs: never whole). Progress goes to
// stderr. The output directory is one the lab imports (Train → Import a run):
//   metrics.json             the lab's metrics JSON (src/lab/export.ts) + per-step attention, the
//                            validation wall time per epoch (evals[].wallMs) and `source`
//   checkpoint.safetensors   encoder + aggregator weights in the lab's names and layouts, with the
//                            run's hash and step in its metadata (as torch/slidelab writes it)
//   model.json, weights.bin  the lab's tfjs weights export
// written at every validation, every --checkpoint-every steps, at the end and on Ctrl-C.
import { existsSync, mkdirSync, openAsBlob, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { attentionDim, ConfigError, featureDim, parseConfig, type Config } from '../src/core/config.ts';
import { aggregatorSpecs } from '../src/core/models/aggregator.ts';
import { encoderSpecs } from '../src/core/models/encoder.ts';
import { unpack } from '../src/core/params.ts';
import { loadPretrained } from '../src/core/pretrained.ts';
import type { RankInfo } from '../src/core/protocol.ts';
import { writeSafetensors } from '../src/core/weights/index.ts';
import { loadDemo, loadManifest, loadSynthetic, type DataSet } from '../src/lab/dataset.ts';
import { exportWeights, metricsJson } from '../src/lab/export.ts';
import { labHash, settingsFromArgument, type LabOptions } from '../src/lab/presets.ts';
import { isBuiltinModel } from '../src/lab/pretrained.ts';
import { Trainer, type RunHistory } from '../src/lab/run.ts';
import { dawnEnvironment } from '../src/runtime/node.ts';
import { useCpu } from '../src/runtime/webgpu.ts';
import type { CohortOptions } from '../src/slide/cohort.ts';
import { fromPath } from '../src/slide/node-open.ts';
import { nodeWorkerRanks } from '../src/transport/node-worker.ts';
import { numberOf, parseCli, setUsage, usageExit } from '../tools/cli.ts';

const USAGE = `usage: npm run train -- <preset name or URL hash> --out <dir> [--manifest <csv>] [--steps N] [--open path|blob] [--weights <file>] [--checkpoint-every N] [--demo <demo.json>] [--json]
Trains as the lab does, in Node: encoder ranks on worker_threads (Dawn WebGPU where an adapter exists,
else cpu; backend=cpu|webgpu in the hash forces one), the aggregator on the main thread. Progress on stderr.
  --manifest <csv>      your slides: slide,label,split,path (paths relative to the CSV); else the hash's data= (demo, synthetic)
  --steps N             stop after N steps (validates at the last one); default: the config's epochs
  --open path|blob      ranks open slides by path (default) or as fs.openAsBlob file-backed Blobs; never read whole
  --weights <file>      the pretrained encoder for encoder.pretrained (the built-in ones load from public/models)
  --checkpoint-every N  also write the outputs every N steps (default: at each validation and the end)
  --demo <demo.json>    the demo data set's index (default public/demo/demo.json)
  --json                print the run's summary as JSON on stdout
Writes <dir>/metrics.json, checkpoint.safetensors, model.json + weights.bin: the lab imports the directory.`;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface TrainOptions {
  argument: string;
  out: string;
  manifest?: string;
  steps?: number;
  open?: 'path' | 'blob';
  weights?: string;
  checkpointEvery?: number;
  demo?: string;
  signal?: AbortSignal;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface TrainSummary {
  dir: string;
  hash: string;
  steps: number;
  totalSteps: number;
  slides: { train: number; val: number; unusable: number };
  backend: string[];
  /** Why ranks are not on WebGPU, when they are not. */
  fallback: string[];
  /** Median step wall time (ms) after the first step, and of all steps. */
  medianStepMs: number;
  /** Validation wall time per validation (ms), in order. */
  validationMs: number[];
  /** Mean training step time per epoch x steps per epoch, beside each validation (ms). */
  trainMsPerEpoch: number[];
  finalLoss: number;
  finalAuc: number;
  aborted: boolean;
  files: string[];
}

/** Node's fetch of a file: URL (manifest, demo.json). */
const fileFetch = (async (u: string | URL | Request) => {
  const url = typeof u === 'string' ? u : u instanceof URL ? u.href : u.url;
  try {
    return new Response(readFileSync(fileURLToPath(url)));
  } catch (e) {
    return new Response(`${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { status: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 404 : 500 });
  }
}) as typeof fetch;

/** Opens a cohort's slide at a file: URL (src/slide/cohort.ts resolves manifest paths to them). */
const openFile: CohortOptions['open'] = (location, o) => fromPath(fileURLToPath(location), o);

/** The ranks read slides by path: the data set's file: URLs become paths. */
function byPath(data: DataSet): DataSet {
  if (data.tileSpec.kind !== 'slides') return data;
  const slides = data.tileSpec.slides.map((s) => ({ ...s, source: typeof s.source === 'string' && s.source.startsWith('file:') ? fileURLToPath(s.source) : s.source }));
  return { ...data, tileSpec: { kind: 'slides', slides } };
}

/**
 * The cohort of a manifest CSV (src/slide/cohort.ts, as the lab's data=manifest:): paths relative
 * to the CSV, every slide's µm per pixel checked and its tiles planned on the config's grid
 * (grid.mpp, grid.tile, ...); a bad slide keeps its row with the reason and the rest go on.
 */
async function loadManifestFile(csvPath: string, cfg: Config, subset: number, signal?: AbortSignal, log?: (s: string) => void): Promise<DataSet> {
  if (!existsSync(csvPath)) throw new Error(`${csvPath}: no such manifest`);
  const set = await loadManifest(pathToFileURL(csvPath).href, subset, fileFetch, cfg.grid, { open: openFile, signal });
  for (const s of set.slides) {
    if (!s.error) log?.(`slide ${s.id}: ${s.tissueTiles} tissue tiles of ${cfg.grid.tile} px at ${cfg.grid.mpp} µm/px (level ${s.level}, ${s.levelMpp} µm/px${s.resample ? ', resampled' : ''})`);
  }
  return byPath(set);
}

/** The demo data set from its demo.json on disk (planned again when the config's grid differs from demo.json's). */
async function loadDemoFiles(demoJson: string, cfg: Config, subset: number, signal?: AbortSignal): Promise<DataSet> {
  if (!existsSync(demoJson)) throw new Error(`the demo data set is missing (${demoJson}): run \`npm run demo\``);
  return byPath(await loadDemo(pathToFileURL(demoJson).href, subset, fileFetch, cfg.grid, { open: openFile, signal }));
}

/** Ranks read slides as file-backed Blobs instead of by path (the lab's dropped-file path, in Node). */
async function asBlobs(data: DataSet): Promise<DataSet> {
  if (data.tileSpec.kind !== 'slides') return data;
  const slides = await Promise.all(data.tileSpec.slides.map(async (s) => (typeof s.source === 'string' ? { ...s, source: await openAsBlob(s.source) } : s)));
  return { ...data, tileSpec: { kind: 'slides', slides } };
}

/** Initial encoder weights: the file given, a built-in model named by encoder.pretrained, or the seed's. */
async function pretrained(cfg: Config, weights: string | undefined, signal?: AbortSignal): Promise<{ cfg: Config; weights?: Float32Array; notes: string[] }> {
  const named = cfg.encoder.pretrained;
  if (!named && !weights) return { cfg, notes: [] };
  const file = weights ?? (isBuiltinModel(named) ? join(ROOT, 'public/models', named) : undefined);
  if (!file) throw new Error(`encoder.pretrained=${named}: give the file with --weights <file> (a link cannot carry weights)`);
  const p = await loadPretrained(await openAsBlob(file), basename(file), cfg, signal);
  return { cfg: parseConfig({ ...cfg, encoder: p.encoder }), weights: p.weights, notes: p.report.notes.map((n) => `weights: ${n}`) };
}

/** Writes `bytes` to `path` through a temporary file, so a reader never sees half a file. */
function writeAtomic(path: string, bytes: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}

/** The lab's metrics JSON plus what its import reads beyond it (attention, weight decay, validation time, source). */
function metricsDoc(history: RunHistory, cfg: Config, hash: string, ranks: RankInfo[], wallSeconds: number) {
  const doc = metricsJson(history, cfg, hash, ranks);
  return {
    ...doc,
    steps: doc.steps.map((s, i) => ({ ...s, weightDecay: history.steps[i].weightDecay, attention: history.steps[i].attention })),
    evals: doc.evals.map((e, i) => ({
      ...e,
      wallMs: history.evals[i].wallMs,
      slides: e.slides.map((s, j) => ({ ...s, attention: history.evals[i].slides[j].attention })),
    })),
    source: { runtime: 'node worker_threads', backend: [...new Set(ranks.map((r) => r.backend))].join('+'), encoderRanks: ranks.length, wallSeconds },
  };
}

const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

export async function train(o: TrainOptions): Promise<TrainSummary> {
  const log = o.log ?? (() => undefined);
  const t0 = performance.now();
  const settings = settingsFromArgument(o.argument);
  const lab: LabOptions = settings.lab;
  const init = await pretrained(settings.config, o.weights, o.signal);
  const cfg = init.cfg;
  init.notes.forEach((n) => log(`note: ${n}`));
  const hash = labHash({ config: cfg, lab });

  let data: DataSet;
  if (o.manifest) data = await loadManifestFile(resolve(o.manifest), cfg, lab.subset, o.signal, log);
  else if (lab.data === 'synthetic') data = loadSynthetic(16, cfg.seed, 32, lab.subset); // the lab session's defaults
  else data = await loadDemoFiles(resolve(o.demo ?? join(ROOT, 'public/demo/demo.json')), cfg, lab.subset, o.signal);
  for (const issue of data.issues) log(`note: ${issue}`);
  for (const s of data.slides) if (s.error) log(`note: ${s.id} is left out: ${s.error}`);
  if (o.open === 'blob') data = await asBlobs(data);
  const count = (split: string) => data.entries.filter((e) => e.split === split).length;
  log(`data: ${data.name}, ${count('train')} training and ${count('val')} validation slides${data.slides.length > data.entries.length ? `, ${data.slides.length - data.entries.length} left out` : ''}`);

  await useCpu(); // the main thread runs only the aggregator
  if (cfg.backend !== 'cpu') dawnEnvironment(); // before the workers start: they inherit the driver environment
  log(`starting ${cfg.ranks} rank${cfg.ranks > 1 ? 's' : ''} (backend=${cfg.backend}) ...`);
  const trainer = await Trainer.create({ cfg, data, makeRanks: nodeWorkerRanks, encoderWeights: init.weights, signal: o.signal });
  const fallback: string[] = [];
  for (const r of trainer.rankInfo) {
    const where = r.adapter ? `WebGPU on ${[r.adapter.vendor, r.adapter.architecture, r.adapter.description].filter(Boolean).join(' ') || 'an unnamed adapter'}${r.adapter.isFallbackAdapter ? ' (software)' : ''}` : 'cpu';
    log(`rank ${r.rank}: ${where}${r.fallbackReason ? ` (${r.fallbackReason}; falling back to the cpu backend)` : ''}, ${r.params} encoder parameters, ${r.kernels ?? 'stock'} kernels`);
    if (r.fallbackReason) fallback.push(r.fallbackReason);
  }

  const dir = resolve(o.out);
  mkdirSync(dir, { recursive: true });
  const files = ['metrics.json', 'checkpoint.safetensors', 'model.json', 'weights.bin'];
  const encSpecs = encoderSpecs(cfg.encoder, cfg.tileSize);
  const aggSpecs = aggregatorSpecs(featureDim(cfg.encoder), attentionDim(cfg.aggregator));
  const save = async () => {
    const step = trainer.engine.step;
    const [enc, agg] = [await trainer.engine.encoderWeights(), await trainer.engine.aggregatorWeights()];
    const ev = unpack(encSpecs, enc), av = unpack(aggSpecs, agg);
    const tensors = [...encSpecs.map((s) => ({ name: s.name, shape: s.shape, data: ev.get(s.name)! })), ...aggSpecs.map((s) => ({ name: s.name, shape: s.shape, data: av.get(s.name)! }))];
    const backends = [...new Set(trainer.rankInfo.map((r) => r.backend))].join('+');
    writeAtomic(join(dir, 'checkpoint.safetensors'), writeSafetensors(tensors, {
      format: 'slide-lab-checkpoint', 'slide-lab.hash': hash, 'slide-lab.step': String(step),
      'slide-lab.source': `npm run train (Node worker_threads, ${backends}, ${cfg.ranks} encoder ranks)`, 'slide-lab.layout': 'lab (conv [kh,kw,in,out], dense [in,out])',
    }));
    const w = exportWeights(encSpecs, enc, aggSpecs, agg, { hash, step });
    writeAtomic(join(dir, 'weights.bin'), new Uint8Array(w.weightsBin));
    writeAtomic(join(dir, 'model.json'), w.modelJson);
    writeAtomic(join(dir, 'metrics.json'), JSON.stringify(metricsDoc(trainer.history, cfg, hash, trainer.rankInfo, (performance.now() - t0) / 1000)));
  };

  const last = Math.min(trainer.total, o.steps ?? trainer.total);
  const spe = trainer.engine.sampler.stepsPerEpoch;
  log(`${last} steps (${spe} per epoch, ${cfg.epochs} epochs in the config), K=${cfg.tiles}, ${cfg.ranks} ranks -> ${dir}`);
  let aborted = false;
  try {
    while (trainer.engine.step < last) {
      const isLast = trainer.engine.step + 1 === last;
      const { report, eval: ev } = await trainer.step(o.signal, isLast);
      const p = trainer.progress();
      log(`step ${report.step + 1}/${last} epoch ${report.epoch + 1} loss ${report.loss.toFixed(4)} ${(report.wallMs / 1000).toFixed(2)} s (${((report.k * 1000) / report.wallMs).toFixed(1)} tiles/s)${Number.isFinite(p.msPerStep) ? `, about ${Math.round((p.msPerStep * (last - p.step)) / 1000)} s left` : ''}`);
      if (ev) log(`validation after step ${ev.step}: AUC ${ev.auc.toFixed(3)} on ${ev.slides.length} slides, ${(ev.wallMs / 1000).toFixed(2)} s`);
      const every = o.checkpointEvery ?? 0;
      if (ev || isLast || (every > 0 && trainer.engine.step % every === 0)) await save();
    }
  } catch (e) {
    if (!o.signal?.aborted) {
      await trainer.dispose();
      throw e;
    }
    aborted = true;
    log(`stopped at step ${trainer.engine.step}: writing what was done`);
    await save().catch((err: Error) => log(`could not write the outputs: ${err.message}`));
  }
  await trainer.dispose();

  const h = trainer.history;
  const stepMs = h.steps.map((s) => s.wallMs);
  const evals = h.evals;
  const trainMsPerEpoch = evals.map((e) => {
    const epochSteps = h.steps.filter((s) => s.step < e.step && s.step >= Math.floor((e.step - 1) / spe) * spe);
    return epochSteps.reduce((a, s) => a + s.wallMs, 0);
  });
  return {
    dir, hash, steps: h.steps.length, totalSteps: trainer.total,
    slides: { train: count('train'), val: count('val'), unusable: data.slides.length - data.entries.length },
    backend: trainer.rankInfo.map((r) => r.backend), fallback,
    medianStepMs: median(stepMs.length > 1 ? stepMs.slice(1) : stepMs),
    validationMs: evals.map((e) => e.wallMs), trainMsPerEpoch,
    finalLoss: h.steps.at(-1)?.loss ?? NaN, finalAuc: evals.at(-1)?.auc ?? NaN, aborted, files,
  };
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const { values, positionals } = parseCli(process.argv.slice(2), {
    out: { type: 'string' }, manifest: { type: 'string' }, steps: { type: 'string' }, open: { type: 'string' }, weights: { type: 'string' },
    'checkpoint-every': { type: 'string' }, demo: { type: 'string' }, json: { type: 'boolean' },
  }, USAGE);
  setUsage(USAGE);
  if (positionals.length !== 1) usageExit(positionals.length ? `one preset or hash, got ${positionals.length} arguments` : 'give a preset name or a URL hash');
  if (!values.out) usageExit('give --out <dir>');
  if (values.open !== undefined && values.open !== 'path' && values.open !== 'blob') usageExit(`--open must be path or blob, got '${values.open}'`);
  const steps = values.steps === undefined ? undefined : numberOf(values.steps, 'steps', 0, true);
  if (steps !== undefined && steps < 1) usageExit('--steps must be at least 1');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort(new Error('interrupted (SIGINT)')));
  const t0 = performance.now();
  try {
    const r = await train({
      argument: positionals[0], out: values.out, manifest: values.manifest, steps, open: values.open as 'path' | 'blob' | undefined, weights: values.weights,
      checkpointEvery: numberOf(values['checkpoint-every'], 'checkpoint-every', 0, true), demo: values.demo, signal: controller.signal,
      log: (line) => console.error(line),
    });
    if (values.json) console.log(JSON.stringify({ ...r, seconds: (performance.now() - t0) / 1000 }, null, 1));
    else console.log(`wrote ${r.dir}: ${r.files.join(', ')} (${r.steps} steps, median step ${(r.medianStepMs / 1000).toFixed(2)} s on ${[...new Set(r.backend)].join('+')}, final AUC ${r.finalAuc.toFixed(3)})`);
    process.exit(r.aborted ? 130 : 0);
  } catch (e) {
    console.error(`train: ${e instanceof ConfigError ? `bad setting: ${e.message}` : (e as Error).message}`);
    process.exit(1);
  }
}

// How good are an encoder's frozen features? Measured on the lab's own code path: loadPretrained
// (the importer) -> encoderSpecs / encoderForward (the lab's tfjs encoder) on demo tiles read as
// the lab's ranks read them (loadDemo's grid, SlideFileTiles at the lab's tile size, preprocessTile
// with the encoder's mean/std, no augmentation).
//
// Ground truth: the demo's planted-lesion masks (lesionTiles in demo.json), lesion tile vs normal
// tile. Measures (probe()):
//   - linear probe: logistic regression (standardised features, class-balanced, L2, full-batch
//     Adam) trained on every tile of the demo's train slides; tile AUC on its validation slides,
//     and a slide-level sanity check: max probe score per validation slide -> slide AUC;
//   - few-shot probes: the same with only k = 1 or 4 lesion tiles (and 8k normal ones), 20 draws;
//   - label-free geometry: share of lesion tiles among the 10 nearest train tiles (cosine) of each
//     validation lesion tile, against its chance level;
//   - slide labels only (what MIL has): a validation tile's mean cosine distance to its 10 nearest
//     tiles of negative train slides, as a lesion score -> tile AUC.
// The same measures run on the lab's seed initialisation of the same architecture (what a run
// gets without the file), on any --baseline weight files (e.g. a PyTorch-initialised ResNet with
// BN statistics estimated on the same windows: pretrain.py --epochs 0), and on the tiles' mean and
// std RGB (6 numbers: how far colour alone goes).
//   npx tsx scripts/pretrain/probe.ts --demo /tmp/demo-sparse/demo.json --model public/models/x.safetensors [--baseline other.safetensors ...] [--json out.json] [--cache tiles.bin]
import { existsSync, openAsBlob, readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inputNorm, parseConfig, type Config } from '../../src/core/config.ts';
import { NO_AUGMENT, preprocessTile } from '../../src/core/augment.ts';
import { rocAuc } from '../../src/core/metrics.ts';
import { encoderForward, encoderSpecs } from '../../src/core/models/encoder.ts';
import { createParams, disposeParams, writeParams } from '../../src/core/params.ts';
import { loadPretrained, type PretrainedEncoder } from '../../src/core/pretrained.ts';
import { tf } from '../../src/core/tf.ts';
import { loadDemo, type DataSet } from '../../src/lab/dataset.ts';
import { SlideFileTiles } from '../../src/runtime/slide-tiles.ts';
import { fromPath } from '../../src/slide/node-open.ts';
import { rng } from '../../src/slide/testing/scene.ts';
import { parseCli, usageExit } from '../../tools/cli.ts';

export const USAGE = `usage: npx tsx scripts/pretrain/probe.ts --demo <demo.json> --model <file.safetensors> [--baseline <file> ...] [--steps 300] [--json <out.json>] [--cache <tiles.bin>]
Linear probe (lesion tile vs normal tile) on frozen features computed by the lab's own encoder:
trained on the demo's train slides, tile and slide AUC on its validation slides; the same probe
on the lab's seed initialisation of the same architecture, on --baseline files and on mean/std RGB.`;

/** The demo data set read from a file (loadDemo with a file: URL; slide files open by path). */
export async function demoFromFile(demoJson: string): Promise<DataSet> {
  const url = pathToFileURL(resolve(demoJson)).href;
  const fetcher = (async (u: string | URL) => new Response(readFileSync(fileURLToPath(String(u))))) as typeof fetch;
  return loadDemo(url, 0, fetcher);
}

/** RGB bytes [n, S, S, 3] of every tissue tile of every slide, read as the lab's ranks read them. */
export async function readAllTiles(ds: DataSet, size: number): Promise<Map<string, Uint8Array>> {
  if (ds.tileSpec.kind !== 'slides') throw new Error('not a slide data set');
  const source = new SlideFileTiles(ds.tileSpec.slides, { openPath: (p, decoder) => fromPath(p.startsWith('file:') ? fileURLToPath(p) : p, { decoder }) });
  const out = new Map<string, Uint8Array>();
  try {
    for (const s of ds.slides) {
      out.set(s.id, await source.read(s.id, Int32Array.from({ length: s.tissueTiles }, (_, i) => i), size));
    }
  } finally {
    source.dispose();
  }
  return out;
}

/** Frozen features [n, D] of tiles [n, S, S, 3] through the lab's encoder with packed weights (or the seed's). */
export async function features(cfg: Config, weights: Float32Array | null, rgb: Uint8Array, batch = 64): Promise<{ data: Float32Array; dim: number }> {
  const S = cfg.tileSize;
  const specs = encoderSpecs(cfg.encoder, S);
  const params = createParams(specs, cfg.seed, false);
  if (weights) writeParams(specs, params, weights);
  const norm = inputNorm(cfg.encoder);
  const n = rgb.length / (S * S * 3);
  const chunks: Float32Array[] = [];
  let dim = 0;
  try {
    for (let i = 0; i < n; i += batch) {
      const m = Math.min(batch, n - i);
      const x = new Float32Array(m * S * S * 3);
      for (let k = 0; k < m; k++) preprocessTile(rgb.subarray((i + k) * S * S * 3, (i + k + 1) * S * S * 3), S, NO_AUGMENT, norm, x, k * S * S * 3);
      const f = tf.tidy(() => encoderForward(params, cfg.encoder, tf.tensor4d(x, [m, S, S, 3])));
      dim = f.shape[1]!;
      chunks.push((await f.data()) as Float32Array);
      f.dispose();
    }
  } finally {
    disposeParams(params);
  }
  const data = new Float32Array(n * dim);
  let o = 0;
  for (const c of chunks) {
    data.set(c, o);
    o += c.length;
  }
  return { data, dim };
}

/** Mean and std of R, G, B per tile: [n, 6]. */
export function colourFeatures(rgb: Uint8Array, size: number): { data: Float32Array; dim: number } {
  const px = size * size;
  const n = rgb.length / (px * 3);
  const out = new Float32Array(n * 6);
  for (let t = 0; t < n; t++) {
    for (let c = 0; c < 3; c++) {
      let s = 0, s2 = 0;
      for (let i = 0; i < px; i++) {
        const v = rgb[(t * px + i) * 3 + c];
        s += v;
        s2 += v * v;
      }
      const m = s / px;
      out[t * 6 + c] = m;
      out[t * 6 + 3 + c] = Math.sqrt(Math.max(0, s2 / px - m * m));
    }
  }
  return { data: out, dim: 6 };
}

/** Features z-scored with the mean and std over `rows` (label-free); constant features count. */
export function standardise(x: Float32Array, dim: number, rows: number[]): { z: Float32Array; constant: number } {
  const mu = new Float64Array(dim), sd = new Float64Array(dim);
  for (const i of rows) for (let d = 0; d < dim; d++) mu[d] += x[i * dim + d] / rows.length;
  for (const i of rows) for (let d = 0; d < dim; d++) sd[d] += (x[i * dim + d] - mu[d]) ** 2 / rows.length;
  let constant = 0;
  for (let d = 0; d < dim; d++) {
    if (sd[d] < 1e-12) constant++;
    sd[d] = Math.sqrt(sd[d]) || 1;
  }
  const z = new Float32Array(x.length);
  for (let i = 0; i < x.length / dim; i++) for (let d = 0; d < dim; d++) z[i * dim + d] = (x[i * dim + d] - mu[d]) / sd[d];
  return { z, constant };
}

/**
 * Logistic regression on standardised features `z`, fit on rows `fit`: class-balanced loss, L2
 * `l2`, full-batch Adam (lr 0.05, `steps` steps) from zero: deterministic. Returns every row's score.
 */
export function logisticScores(z: Float32Array, dim: number, y: Uint8Array, fit: number[], steps = 300, l2 = 1e-3): number[] {
  const pos = fit.filter((i) => y[i]).length, neg = fit.length - pos;
  const wOf = (i: number) => (y[i] ? 0.5 / pos : 0.5 / neg);
  const w = new Float64Array(dim + 1); // last: bias
  const m1 = new Float64Array(dim + 1), m2 = new Float64Array(dim + 1);
  const score = (i: number) => {
    let s = w[dim];
    for (let d = 0; d < dim; d++) s += w[d] * z[i * dim + d];
    return s;
  };
  for (let t = 1; t <= steps; t++) {
    const g = new Float64Array(dim + 1);
    for (const i of fit) {
      const e = (1 / (1 + Math.exp(-score(i))) - y[i]) * wOf(i);
      for (let d = 0; d < dim; d++) g[d] += e * z[i * dim + d];
      g[dim] += e;
    }
    for (let d = 0; d < dim; d++) g[d] += l2 * w[d];
    for (let d = 0; d <= dim; d++) {
      m1[d] = 0.9 * m1[d] + 0.1 * g[d];
      m2[d] = 0.999 * m2[d] + 0.001 * g[d] * g[d];
      w[d] -= (0.05 * (m1[d] / (1 - 0.9 ** t))) / (Math.sqrt(m2[d] / (1 - 0.999 ** t)) + 1e-8);
    }
  }
  return Array.from({ length: y.length }, (_, i) => score(i));
}

export interface TileTable {
  /** Planted lesion (1) or not, per tile. */
  y: Uint8Array;
  /** The tile's slide is a train slide. */
  train: boolean[];
  /** Slide number of each tile; per slide its label. */
  slideOf: number[];
  slideLabel: number[];
}

export interface ProbeResult {
  /** Linear probe on every train tile: val tile AUC, val slide AUC (max score per slide), train tile AUC. */
  tileAuc: number;
  slideAuc: number;
  trainTileAuc: number;
  /** Few-shot probes: k lesion tiles and 8k normal tiles of the train slides, `repeats` draws: val tile AUC mean, min. */
  fewShot: { k: number; mean: number; min: number }[];
  /** Label-free geometry: share of lesion tiles among the 10 nearest train tiles of a val lesion tile (cosine), and its chance level. */
  knnPurity: number;
  knnChance: number;
  /** Slide labels only (as MIL): val tile score = mean cosine distance to the 10 nearest tiles of negative train slides; tile AUC. */
  anomalyAuc: number;
  /** Features with zero variance over the training tiles (dead units). */
  constantFeatures: number;
}

const rowsWhere = (n: number, f: (i: number) => boolean) => [...Array(n).keys()].filter(f);

/** Rows scaled to unit length (cosine similarity = dot product). */
function unitRows(z: Float32Array, dim: number): Float32Array {
  const u = new Float32Array(z.length);
  for (let i = 0; i < z.length / dim; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += z[i * dim + d] ** 2;
    const r = 1 / (Math.sqrt(s) || 1);
    for (let d = 0; d < dim; d++) u[i * dim + d] = z[i * dim + d] * r;
  }
  return u;
}

function nearest(u: Float32Array, dim: number, i: number, to: number[], k: number): { j: number; sim: number }[] {
  const sims = to.map((j) => {
    let s = 0;
    for (let d = 0; d < dim; d++) s += u[i * dim + d] * u[j * dim + d];
    return { j, sim: s };
  });
  return sims.sort((a, b) => b.sim - a.sim).slice(0, k);
}

/** Every measure of ProbeResult for features x [n, dim]. Deterministic (few-shot draws from `seed`). */
export function probe(x: Float32Array, dim: number, t: TileTable, steps = 300, repeats = 20, seed = 1): ProbeResult {
  const n = t.y.length;
  const tr = rowsWhere(n, (i) => t.train[i]);
  const va = rowsWhere(n, (i) => !t.train[i]);
  const { z, constant } = standardise(x, dim, tr);
  const aucOn = (s: number[], rows: number[]) => rocAuc(rows.map((i) => s[i]), rows.map((i) => t.y[i]));
  const s = logisticScores(z, dim, t.y, tr, steps);
  const slideMax = new Map<number, number>();
  for (const i of va) slideMax.set(t.slideOf[i], Math.max(slideMax.get(t.slideOf[i]) ?? -Infinity, s[i]));
  const vs = [...slideMax.keys()];
  const random = rng(seed);
  const pick = <T,>(a: T[], m: number) => a.map((v) => ({ v, r: random() })).sort((p, q) => p.r - q.r).slice(0, m).map((p) => p.v);
  const lesionTr = tr.filter((i) => t.y[i]), normalTr = tr.filter((i) => !t.y[i]);
  const fewShot = [1, 4].map((k) => {
    const aucs = Array.from({ length: repeats }, () => aucOn(logisticScores(z, dim, t.y, [...pick(lesionTr, k), ...pick(normalTr, 8 * k)], steps), va));
    return { k, mean: aucs.reduce((a, b) => a + b, 0) / repeats, min: Math.min(...aucs) };
  });
  const u = unitRows(z, dim);
  const lesionVa = va.filter((i) => t.y[i]);
  const knnPurity = lesionVa.reduce((a, i) => a + nearest(u, dim, i, tr, 10).filter((nb) => t.y[nb.j]).length / 10, 0) / lesionVa.length;
  const negTr = tr.filter((i) => t.slideLabel[t.slideOf[i]] === 0);
  const anomaly: number[] = new Array(n).fill(0);
  for (const i of va) anomaly[i] = nearest(u, dim, i, negTr, 10).reduce((a, nb) => a + (1 - nb.sim), 0) / 10;
  return {
    tileAuc: aucOn(s, va),
    trainTileAuc: aucOn(s, tr),
    slideAuc: rocAuc(vs.map((k) => slideMax.get(k)!), vs.map((k) => t.slideLabel[k])),
    fewShot,
    knnPurity,
    knnChance: lesionTr.length / tr.length,
    anomalyAuc: aucOn(anomaly, va),
    constantFeatures: constant,
  };
}

export function formatProbe(name: string, dim: number, r: ProbeResult): string {
  const f = r.fewShot.map((q) => `${q.k}-shot ${q.mean.toFixed(3)} (min ${q.min.toFixed(3)})`).join(', ');
  return `${name}: D ${dim}; probe val tile AUC ${r.tileAuc.toFixed(3)}, val slide AUC (max) ${r.slideAuc.toFixed(3)}, train tile AUC ${r.trainTileAuc.toFixed(3)}; ${f}; ` +
    `kNN lesion purity@10 ${r.knnPurity.toFixed(3)} (chance ${r.knnChance.toFixed(3)}); anomaly tile AUC ${r.anomalyAuc.toFixed(3)}; constant features ${r.constantFeatures}`;
}

/** The lab config a weight file's json recommends (tile size and normalisation) over `base`. */
export function configForModel(modelJson: string | null, base: Record<string, unknown> = {}): Config {
  const doc = modelJson ? (JSON.parse(readFileSync(modelJson, 'utf8')) as { tileSize: number; input: { mean: string; std: string } }) : null;
  return parseConfig({ ...base, tileSize: doc?.tileSize ?? 32, encoder: doc ? { mean: doc.input.mean, std: doc.input.std } : {} });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseCli(process.argv.slice(2), {
    demo: { type: 'string' }, model: { type: 'string' }, baseline: { type: 'string', multiple: true }, steps: { type: 'string' }, json: { type: 'string' }, cache: { type: 'string' },
  }, USAGE);
  if (positionals.length) usageExit(`unexpected argument '${positionals[0]}'`, USAGE);
  if (!values.demo || !values.model) usageExit('give --demo <demo.json> and --model <file.safetensors>', USAGE);
  const steps = Number(values.steps ?? 300);
  await tf.setBackend('cpu');
  const t0 = performance.now();
  const modelPath = values.model;
  const jsonPath = modelPath.replace(/\.safetensors$/, '.json');
  const cfg0 = configForModel(jsonPath !== modelPath ? jsonPath : null);
  const load = async (path: string): Promise<PretrainedEncoder> => loadPretrained(await openAsBlob(path), basename(path), cfg0);
  const model = await load(modelPath);
  const cfg = parseConfig({ ...cfg0, encoder: model.encoder });
  const ds = await demoFromFile(values.demo);
  // --cache: the tiles' bytes, read once (the same bytes SlideFileTiles returns).
  const cached = values.cache && existsSync(values.cache) ? new Uint8Array(readFileSync(values.cache)) : null;
  const tiles = new Map<string, Uint8Array>();
  if (cached) {
    let o = 0;
    for (const s of ds.slides) {
      const len = s.tissueTiles * cfg.tileSize * cfg.tileSize * 3;
      tiles.set(s.id, cached.subarray(o, o + len));
      o += len;
    }
    if (o !== cached.length) usageExit(`${values.cache} does not hold this demo's ${cfg.tileSize}-px tiles`, USAGE);
  } else {
    for (const [id, px] of await readAllTiles(ds, cfg.tileSize)) tiles.set(id, px);
  }
  // Tile table: label = planted lesion, train = the slide's split.
  const y: number[] = [], train: boolean[] = [], slideOf: number[] = [], slideLabel: number[] = [];
  const rgbParts: Uint8Array[] = [];
  ds.slides.forEach((s, k) => {
    const lesions = new Set(s.lesionTiles ?? []);
    for (let i = 0; i < s.tissueTiles; i++) {
      y.push(lesions.has(i) ? 1 : 0);
      train.push(s.split === 'train');
      slideOf.push(k);
    }
    slideLabel.push(s.label ?? 0);
    rgbParts.push(tiles.get(s.id)!);
  });
  const rgb = new Uint8Array(rgbParts.reduce((a, p) => a + p.length, 0));
  rgbParts.reduce((o, p) => (rgb.set(p, o), o + p.length), 0);
  if (values.cache && !cached) writeFileSync(values.cache, rgb);
  const table: TileTable = { y: Uint8Array.from(y), train, slideOf, slideLabel };
  const count = (f: (i: number) => boolean) => y.filter((_, i) => f(i)).length;
  console.log(`probe: ${ds.slides.length} slides, ${y.length} tiles (${count((i) => train[i])} train, ${count((i) => !train[i])} val); lesion tiles ${count((i) => train[i] && y[i] === 1)} train, ${count((i) => !train[i] && y[i] === 1)} val; ${cfg.tileSize}-px tiles, mean ${cfg.encoder.mean} std ${cfg.encoder.std}`);

  const rows: { name: string; dim: number; result: ProbeResult }[] = [];
  const report = (name: string, f: { data: Float32Array; dim: number }) => {
    const result = probe(f.data, f.dim, table, steps);
    rows.push({ name, dim: f.dim, result });
    console.log(formatProbe(name, f.dim, result));
  };
  report(`${basename(modelPath)} (pretrained)`, await features(cfg, model.weights, rgb));
  report(`lab seed init (seed ${cfg.seed}), same architecture`, await features(cfg, null, rgb));
  for (const b of values.baseline ?? []) report(basename(b), await features(cfg, (await load(b)).weights, rgb));
  report('mean + std RGB (6 numbers)', colourFeatures(rgb, cfg.tileSize));
  const secs = (performance.now() - t0) / 1000;
  console.log(`probe: ${secs.toFixed(1)} s`);
  if (values.json) writeFileSync(values.json, JSON.stringify({ demo: resolve(values.demo), model: resolve(modelPath), tileSize: cfg.tileSize, encoder: cfg.encoder, steps, tiles: y.length, rows, seconds: Math.round(secs) }, null, 1));
}

// npm run export:torch -- <preset name or URL hash> [--manifest <csv>] [--weights <file>] --out <dir>
// Writes a run directory that `torchrun --nproc_per_node N+1 -m slidelab.train <dir>` trains with
// PyTorch torch.distributed exactly as the lab would (same slides, tiles, augmentation, dropout
// masks, initial weights, optimizer groups and schedules):
//   config.json         the validated config (parseConfig), the lab options, the hash, step counts
//   slides.json         the slide list: synthetic (ids, labels, splits, tile counts, seed) or slide
//                       files with the tile grids the lab plans (path, level, rectangles)
//   manifest.csv        the manifest (slide files only)
//   params.json         parameter specs in packing order: name, lab shape, decay, layer, lr multiplier
//   init.safetensors    initial encoder (seed or pretrained) and aggregator weights, lab names and layouts
//   slidelab/           the Python package (a copy of torch/slidelab), so the directory runs anywhere
//   command.txt, README.md   the exact launch command
import { copyFileSync, existsSync, mkdirSync, openAsBlob, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attentionDim, ConfigError, featureDim, parseConfig, type Config } from '../src/core/config.ts';
import { aggregatorSpecs, TRACKED_AGGREGATOR_LAYER } from '../src/core/models/aggregator.ts';
import { encoderSpecs, trackedEncoderLayers } from '../src/core/models/encoder.ts';
import { encoderLrScales } from '../src/core/optim/fine-tune.ts';
import { packInitialValues, unpack, type ParamSpec } from '../src/core/params.ts';
import { loadPretrained } from '../src/core/pretrained.ts';
import { Sampler, type SlideEntry } from '../src/core/sampler.ts';
import { writeSafetensors } from '../src/core/weights/index.ts';
import { loadSynthetic, stratifiedSubset } from '../src/lab/dataset.ts';
import { labHash, settingsFromArgument, type LabOptions } from '../src/lab/presets.ts';
import type { DemoIndex } from '../src/slide/demo-index.ts';
import { formatIssues, parseManifest } from '../src/slide/manifest.ts';
import { fromPath } from '../src/slide/node-open.ts';
import { planSlide, type TileGrid } from '../src/slide/tiles.ts';
import { parseCli, setUsage, usageExit } from '../tools/cli.ts';

const USAGE = `usage: npm run export:torch -- <preset name or URL hash> --out <dir> [--manifest <csv>] [--weights <file>] [--demo <demo.json>]
Writes a run directory for PyTorch: torchrun --nproc_per_node N+1 -m slidelab.train <dir> (1 aggregator + N encoder ranks).
  data=synthetic      the lab's synthetic slides (bit-identical tiles in PyTorch)
  data=demo           the demo slides (public/demo/demo.json, or --demo <file>)
  --manifest <csv>    slide files: slide,label,split,path (paths relative to the CSV); tissue tiles are planned here
  --weights <file>    the pretrained encoder file for encoder.pretrained (safetensors or torch.save zip)`;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface SlideRecord extends SlideEntry {
  path?: string;
  grid?: { tileSize: number; tile0: number; level: number; levelScaleX: number; levelScaleY: number; resample: boolean; mpp: number; slideMpp: number; cols: number; rows: number; tiles: number[][] };
}

interface DataDoc {
  kind: 'synthetic' | 'files';
  slides: SlideRecord[];
  [key: string]: unknown;
}

export interface ExportResult {
  dir: string;
  command: string;
  config: Config;
  lab: LabOptions;
  hash: string;
  slides: SlideRecord[];
  stepsPerEpoch: number;
  issues: string[];
}

const gridDoc = (g: TileGrid): SlideRecord['grid'] => ({
  tileSize: g.tileSize, tile0: g.tile0, level: g.level, levelScaleX: g.levelScaleX, levelScaleY: g.levelScaleY, resample: g.resample,
  mpp: g.mpp, slideMpp: g.slideMpp, cols: g.cols, rows: g.rows, tiles: g.tiles.map((t) => [t.x, t.y, t.w, t.h]),
});

/** Slide files of a manifest: opened and tissue-planned in Node as the lab does (planSlide defaults). */
async function manifestData(csvPath: string, subset: number, issues: string[]): Promise<{ doc: DataDoc; csv: string }> {
  const csv = readFileSync(csvPath, 'utf8');
  const manifest = parseManifest(csv);
  issues.push(...formatIssues(manifest.errors));
  const slides: SlideRecord[] = [];
  for (const row of stratifiedSubset(manifest.rows, subset)) {
    if (!row.path) {
      issues.push(`${row.slide}: the manifest gives no path (a torch run reads files by path)`);
      continue;
    }
    const path = isAbsolute(row.path) ? row.path : resolve(dirname(csvPath), row.path);
    try {
      const source = await fromPath(path);
      try {
        const { grid } = await planSlide(source);
        if (!grid.tiles.length) issues.push(`${row.slide}: no tissue tiles`);
        else slides.push({ id: row.slide, label: row.label, split: row.split, numTiles: grid.tiles.length, path, grid: gridDoc(grid) });
      } finally {
        await source.close();
      }
    } catch (e) {
      issues.push(`${row.slide}: ${(e as Error).message}`);
    }
  }
  return { doc: { kind: 'files', manifest: 'manifest.csv', slides }, csv };
}

/** The demo slides, from demo.json's grids (as the lab's loadDemo). */
function demoData(demoJson: string, subset: number): { doc: DataDoc; csv: string } {
  if (!existsSync(demoJson)) throw new Error(`the demo data set is missing (${demoJson}): run \`npm run demo\``);
  const index = JSON.parse(readFileSync(demoJson, 'utf8')) as DemoIndex;
  const chosen = stratifiedSubset(index.slides, subset);
  const slides: SlideRecord[] = chosen.map((s) => ({
    id: s.slide, label: s.label, split: s.split, numTiles: s.grid.tiles.length, path: resolve(dirname(demoJson), s.path), grid: gridDoc(s.grid),
  }));
  const csv = ['slide,label,split,path', ...slides.map((s) => `${s.id},${s.label},${s.split},${s.path}`)].join('\n') + '\n';
  return { doc: { kind: 'files', manifest: 'manifest.csv', source: 'demo', slides }, csv };
}

const specDoc = (specs: ParamSpec[], scales?: Map<string, number>) =>
  specs.map((s) => ({ name: s.name, shape: s.shape, decay: s.decay, ...(s.layer !== undefined ? { layer: s.layer } : {}), lrScale: scales?.get(s.name) ?? 1 }));

export async function exportTorchRun(argument: string, options: { out: string; manifest?: string; weights?: string; demo?: string }): Promise<ExportResult> {
  const settings = settingsFromArgument(argument);
  let config = settings.config;
  const lab = settings.lab;
  const issues: string[] = [];

  // Initial encoder weights: a pretrained file, or the seed's (what createParams holds).
  let encoderWeights: Float32Array | null = null;
  if (config.encoder.pretrained || options.weights) {
    if (!options.weights) throw new Error(`encoder.pretrained=${config.encoder.pretrained}: give the file with --weights <file> (a link cannot carry weights)`);
    const p = await loadPretrained(await openAsBlob(options.weights), basename(options.weights), config);
    config = parseConfig({ ...config, encoder: p.encoder });
    encoderWeights = p.weights;
    issues.push(...p.report.notes.map((n) => `weights: ${n}`));
  }
  const encSpecs = encoderSpecs(config.encoder, config.tileSize);
  const aggSpecs = aggregatorSpecs(featureDim(config.encoder), attentionDim(config.aggregator));
  encoderWeights ??= packInitialValues(encSpecs, config.seed);
  const aggWeights = packInitialValues(aggSpecs, config.seed);

  // Data.
  let data: DataDoc;
  let csv: string | null = null;
  if (options.manifest) {
    ({ doc: data, csv } = await manifestData(resolve(options.manifest), lab.subset, issues));
  } else if (lab.data === 'synthetic') {
    const count = 16;
    const tilesPerSlide = 32; // the lab session's loadSynthetic defaults
    const set = loadSynthetic(count, config.seed, tilesPerSlide, lab.subset);
    data = { kind: 'synthetic', seed: config.seed, count, tilesPerSlide, subset: lab.subset, lesionFraction: 0.2, slides: set.entries };
  } else {
    ({ doc: data, csv } = demoData(resolve(options.demo ?? join(ROOT, 'public/demo/demo.json')), lab.subset));
  }
  if (!data.slides.some((s) => s.split === 'train')) throw new Error(`no usable training slide${issues.length ? `: ${issues.slice(0, 3).join('; ')}` : ''}`);
  const spe = new Sampler(data.slides, config.seed, config.tiles).stepsPerEpoch;
  const hash = labHash({ config, lab });

  const dir = resolve(options.out);
  mkdirSync(dir, { recursive: true });
  const world = config.ranks + 1;
  const command = `cd ${dir} && torchrun --nproc_per_node ${world} -m slidelab.train . --out result`;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    kind: 'slide-lab-torch-run', version: 1, hash, config, lab,
    stepsPerEpoch: spe, totalSteps: config.epochs * spe, encoderRanks: config.ranks, processes: world,
    initialEncoder: config.encoder.pretrained ? `pretrained: ${config.encoder.pretrained}` : `seed ${config.seed}`,
  }, null, 1));
  writeFileSync(join(dir, 'slides.json'), data.kind === 'synthetic' ? JSON.stringify(data, null, 1) : JSON.stringify(data)); // tile grids can be large
  if (csv !== null) writeFileSync(join(dir, 'manifest.csv'), csv);
  writeFileSync(join(dir, 'params.json'), JSON.stringify({
    featureDim: featureDim(config.encoder), tracked: [...trackedEncoderLayers(config.encoder), TRACKED_AGGREGATOR_LAYER],
    encoder: specDoc(encSpecs, encoderLrScales(encSpecs, config.encoder)), aggregator: specDoc(aggSpecs),
  }, null, 1));
  const encViews = unpack(encSpecs, encoderWeights);
  const aggViews = unpack(aggSpecs, aggWeights);
  const tensors = [
    ...encSpecs.map((s) => ({ name: s.name, shape: s.shape, data: encViews.get(s.name)! })),
    ...aggSpecs.map((s) => ({ name: s.name, shape: s.shape, data: aggViews.get(s.name)! })),
  ];
  writeFileSync(join(dir, 'init.safetensors'), writeSafetensors(tensors, { format: 'slide-lab-init', 'slide-lab.hash': hash, 'slide-lab.layout': 'lab (conv [kh,kw,in,out], dense [in,out])' }));

  // The Python package travels with the run, so the directory is all a cluster needs.
  const pkg = join(ROOT, 'torch/slidelab');
  mkdirSync(join(dir, 'slidelab'), { recursive: true });
  for (const f of readdirSync(pkg)) if (f.endsWith('.py')) copyFileSync(join(pkg, f), join(dir, 'slidelab', f));

  writeFileSync(join(dir, 'command.txt'), `${command}\n`);
  writeFileSync(join(dir, 'README.md'), [
    `# Slide Lab run for PyTorch: ${hash || '(defaults)'}`,
    '',
    `${config.ranks} encoder ranks + 1 aggregator process; ${data.slides.length} slides (${data.kind}), ${spe} steps per epoch, ${config.epochs * spe} steps.`,
    '',
    'Launch (gloo on CPU; NCCL when CUDA is available, one GPU per process):',
    '',
    '```',
    command,
    '```',
    '',
    'Any N works: `--nproc_per_node N+1` splits the K tiles over N encoder ranks (the sum of their gradients does not depend on N).',
    '`result/` then holds checkpoint.safetensors (lab names and layouts), optimizer.safetensors, model.json + weights.bin',
    "(the lab's weights format) and metrics.json (the lab's metrics JSON). `python -m slidelab.train --help` lists the options.",
    ...(data.kind === 'files' ? ['', 'Slide files: openslide-python (`pip install openslide-python openslide-bin`) reads any slide; without it Pillow reads small ones. `--slides-root <dir>` when the files moved.'] : []),
    '',
    "PyTorch 1.13 on Python 3.11 (Debian 12's python3-torch): torchrun stops with `AttributeError: 'NoneType' object has no attribute 'get'`;",
    '`python3 -m slidelab.launch` takes the same arguments and mends that.',
    '',
  ].join('\n'));
  return { dir, command, config, lab, hash, slides: data.slides, stepsPerEpoch: spe, issues };
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const { values, positionals } = parseCli(process.argv.slice(2), {
    out: { type: 'string' }, manifest: { type: 'string' }, weights: { type: 'string' }, demo: { type: 'string' },
  }, USAGE);
  setUsage(USAGE);
  if (positionals.length !== 1) usageExit(positionals.length ? `one preset or hash, got ${positionals.length} arguments` : 'give a preset name or a URL hash');
  if (!values.out) usageExit('give --out <dir>');
  try {
    const r = await exportTorchRun(positionals[0], { out: values.out, manifest: values.manifest, weights: values.weights, demo: values.demo });
    for (const issue of r.issues) console.error(`note: ${issue}`);
    console.log(`wrote ${r.dir}: ${r.slides.length} slides, ${r.stepsPerEpoch} steps per epoch, ${r.config.ranks} encoder ranks (${r.hash || 'defaults'})`);
    console.log(r.command);
  } catch (e) {
    console.error(`export:torch: ${e instanceof ConfigError ? `bad setting: ${e.message}` : (e as Error).message}`);
    process.exit(1);
  }
}

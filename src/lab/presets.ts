// The lab's URL hash: the engine config (src/core/config.ts serialises only what differs from
// the defaults) plus a few lab-level keys (data set, experiment settings). Named presets are
// hashes too, so every lesson is a link: `#preset=first-look&tiles=32` = the preset, then overrides.
import { ConfigError, configFromHash, configToHash, parseConfig, type Config } from '../core/config.ts';

/**
 * Which data set the lab loads: the built-in demo slides, synthetic tiles (no files at all), or
 * `manifest:<url>`: a manifest CSV whose `path` column holds slide URLs relative to it, read by
 * HTTP range requests from any static server that answers them.
 */
export type DataChoice = 'demo' | 'synthetic' | `manifest:${string}`;

/** The manifest URL of a `manifest:<url>` data choice, else null. */
export function manifestUrlOf(data: DataChoice): string | null {
  return data.startsWith('manifest:') ? data.slice('manifest:'.length) : null;
}

/**
 * The main context's tfjs backend (it runs only the aggregator). 'auto': the cpu backend when
 * WebGPU is a software adapter (SwiftShader) or the ranks run on the cpu backend, else WebGPU.
 */
export type MainBackend = 'auto' | 'webgpu' | 'cpu';
export const MAIN_BACKENDS: readonly MainBackend[] = ['auto', 'webgpu', 'cpu'];

export interface LabOptions {
  data: DataChoice;
  /** Use only this many slides of the data set (stratified by label and split); 0 = all. */
  subset: number;
  /** K values of the K sweep experiment. */
  sweep: number[];
  /** Stop every experiment run after this many steps (0 = the config's epochs). */
  expSteps: number;
  /** Steps of the equivalence check. */
  eqSteps: number;
  /** Panel to show first. */
  panel: string;
  /** The main context's backend for the aggregator (see MainBackend). */
  mainBackend: MainBackend;
}

export const DEFAULT_LAB: LabOptions = { data: 'demo', subset: 0, sweep: [4, 8, 16], expSteps: 0, eqSteps: 3, panel: 'train', mainBackend: 'auto' };

export interface LabSettings {
  preset: string | null;
  config: Config;
  lab: LabOptions;
}

export interface Preset {
  name: string;
  title: string;
  description: string;
  /** Hash body without '#': config keys and lab keys. */
  hash: string;
}

// Small enough to train on a CPU-only machine (SwiftShader WebGPU): tiny CNN, 32 px tiles.
const SMALL = 'encoder.kind=tiny-cnn&encoder.width=8&tileSize=32&microBatch=8&ranks=2&evalTiles=32&augment.blur=0';
// The SimCLR-pretrained torchvision ResNet-18 of width 16 for 32-px tiles that ships in
// public/models (docs/PRETRAINING.md; a link that names it loads it by URL), fine-tuned end to end
// at a tenth of the aggregator's learning rate, constant 1e-3, no dropout, augmentation or decay.
// The experiments over K (and the paper's figures) add a layer norm on the features (NORM): the
// pretrained features reach 8.6, and without it the aggregator sometimes collapsed to a constant
// prediction at K = 64 (2 of 5 splits with the frozen encoder, 1 of 5 end to end); with it, 0 of 5
// (docs/PLATEAU.md, "The pretrained encoder"). First look (K = 16, where no run collapsed) goes
// without it: in headless Chromium its validation AUC was 0.917 after step 12 without the norm and
// 0.528 after step 12 (0.833 after step 36) with it.
// Validation on every tissue tile (evalTiles=0): with lesions in 5% of the tiles, a sample of
// tiles misses the lesions of many positive slides.
const PRETRAINED = 'encoder.kind=tv-resnet&encoder.width=16&encoder.pretrained=slidelab-simclr-r18w16.safetensors&tileSize=32&microBatch=8&ranks=2&evalTiles=0&augment.blur=0';
const NORM = 'featureNorm=layer';
const FINE_TUNE = 'optimizer.encoderLrScale=0.1&dropout=0&augment.flip=false&augment.rot90=false&optimizer.lr=0.001&optimizer.minLr=0.001&optimizer.weightDecay=0&optimizer.weightDecayEnd=0';

export const PRESETS: Preset[] = [
  {
    name: 'first-look',
    title: 'First look',
    description: 'Two ranks fine-tune the pretrained encoder that ships with the lab and train the attention aggregator end to end on the demo slides (lesions in 5% of a positive slide\'s tissue); validation on all 12 validation slides every 12 steps. Watch the AUC rise, the attention move to the lesions, and the gather/scatter timeline. The ranks run on the cpu backend, faster for this small encoder than a software WebGPU adapter (backend=auto for WebGPU).',
    hash: `${PRETRAINED}&${FINE_TUNE}&tiles=16&epochs=2&evalEvery=12&backend=cpu`,
  },
  {
    name: 'more-tiles-help',
    title: 'More tiles help',
    description: 'From the pretrained encoder, the same run at K = 4, 16 and 64 tiles per slide: final training loss and validation AUC against K. With lesions in 5% of the tissue, a small K often misses them.',
    hash: `${PRETRAINED}&${FINE_TUNE}&${NORM}&tiles=16&epochs=1&sweep=4,16,64&panel=experiments`,
  },
  {
    name: 'frozen-vs-end-to-end',
    title: 'Frozen vs end to end',
    description: 'From the same pretrained weights and seed, everything else identical: the frozen pretrained encoder (classic MIL: only the aggregator learns) against end-to-end fine-tuning.',
    hash: `${PRETRAINED}&${FINE_TUNE}&${NORM}&tiles=16&epochs=1&panel=experiments`,
  },
  {
    name: 'from-scratch',
    title: 'From scratch (the plateau)',
    description: 'A tiny CNN from random weights, end to end on the sparse demo: the loss sits at ln 2 (docs/PLATEAU.md says why and what moves it). On the easy demo (npm run demo -- --easy --force) it learns.',
    hash: `${SMALL}&tiles=16&epochs=3&optimizer.lr=0.002&optimizer.minLr=0.00002&subset=12`,
  },
  {
    name: 'learn-the-lesions',
    title: 'Learn the lesions',
    description: 'A longer end-to-end run of the tiny CNN from random weights on all demo slides (12 epochs, constant learning rate, no dropout or augmentation). On the easy demo (npm run demo -- --easy --force, lesions in 30% of the tissue) it gets past the first plateau: the loss leaves ln 2 and the attention moves to the lesions; on the default sparse demo it does not (docs/PLATEAU.md).',
    hash: `${SMALL}&tiles=16&epochs=12&subset=0&dropout=0&augment.flip=false&augment.rot90=false&optimizer.lr=0.001&optimizer.minLr=0.001&optimizer.weightDecay=0&optimizer.weightDecayEnd=0`,
  },
  {
    name: 'pretrained-first-look',
    title: 'Start from a pretrained encoder',
    description: 'End-to-end fine-tuning from the SimCLR-pretrained ResNet-18 that ships with the lab (public/models, made by scripts/pretrain without labels), with a layer norm on the features: the aggregator learns from features that already set lesions apart. The paper-figures mode starts from this preset. Add frozenEncoder=true for the frozen-encoder baseline.',
    hash: 'encoder.kind=tv-resnet&encoder.width=16&encoder.pretrained=slidelab-simclr-r18w16.safetensors&featureNorm=layer&optimizer.encoderLrScale=0.1&tileSize=32&microBatch=8&ranks=2&evalTiles=32&tiles=16&epochs=2&subset=0&dropout=0&augment.flip=false&augment.rot90=false&augment.blur=0&optimizer.lr=0.001&optimizer.minLr=0.001&optimizer.weightDecay=0&optimizer.weightDecayEnd=0',
  },
  {
    name: 'equivalence',
    title: 'Equivalence',
    description: 'N ranks with gather/scatter against the single-graph reference: loss and normalised L1 differences per step, with the tolerance.',
    hash: 'encoder.kind=tiny-cnn&encoder.width=4&tileSize=16&tiles=6&microBatch=2&ranks=2&data=synthetic&eqSteps=3&panel=equivalence',
  },
];

const LAB_KEYS = new Set(['preset', 'data', 'subset', 'sweep', 'expSteps', 'eqSteps', 'panel', 'mainBackend']);

function parseLab(params: URLSearchParams, base: LabOptions): LabOptions {
  const lab = { ...base, sweep: [...base.sweep] };
  const problems: { field: string; message: string }[] = [];
  const intOf = (key: string, min: number, max: number): number | undefined => {
    const raw = params.get(key);
    if (raw === null) return undefined;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) problems.push({ field: key, message: `must be a whole number from ${min} to ${max}` });
    return v;
  };
  const data = params.get('data');
  if (data !== null) {
    if (data === 'demo' || data === 'synthetic') lab.data = data;
    else if (/^manifest:\S+$/.test(data)) lab.data = data as DataChoice;
    else problems.push({ field: 'data', message: 'must be demo, synthetic or manifest:<URL of a manifest CSV>' });
  }
  lab.subset = intOf('subset', 0, 10000) ?? lab.subset;
  lab.expSteps = intOf('expSteps', 0, 100000) ?? lab.expSteps;
  lab.eqSteps = intOf('eqSteps', 1, 50) ?? lab.eqSteps;
  const sweep = params.get('sweep');
  if (sweep !== null) {
    const ks = sweep.split(',').map((s) => Number(s.trim()));
    if (!ks.length || ks.some((k) => !Number.isInteger(k) || k < 1 || k > 65536)) problems.push({ field: 'sweep', message: 'must be a comma-separated list of whole numbers (K values)' });
    else lab.sweep = ks;
  }
  lab.panel = params.get('panel') ?? lab.panel;
  const mainBackend = params.get('mainBackend');
  if (mainBackend !== null) {
    if ((MAIN_BACKENDS as readonly string[]).includes(mainBackend)) lab.mainBackend = mainBackend as MainBackend;
    else problems.push({ field: 'mainBackend', message: `must be ${MAIN_BACKENDS.join(', ')}` });
  }
  if (problems.length) throw new ConfigError(problems);
  return lab;
}

function split(hash: string): { config: URLSearchParams; lab: URLSearchParams } {
  const all = new URLSearchParams(hash.replace(/^#/, ''));
  const config = new URLSearchParams();
  const lab = new URLSearchParams();
  for (const [k, v] of all) (LAB_KEYS.has(k) ? lab : config).set(k, v);
  return { config, lab };
}

export function findPreset(name: string): Preset | undefined {
  return PRESETS.find((p) => p.name === name);
}

/**
 * Parses a lab hash: `#preset=NAME` applies the preset first, then every other key overrides
 * it. Throws ConfigError naming each bad field (unknown preset, unknown key, bad value).
 */
export function parseLabHash(hash: string): LabSettings {
  const own = split(hash);
  const presetName = own.lab.get('preset');
  let base = { config: new URLSearchParams(), lab: new URLSearchParams() };
  if (presetName) {
    const preset = findPreset(presetName);
    if (!preset) throw new ConfigError([{ field: 'preset', message: `unknown preset "${presetName}" (known: ${PRESETS.map((p) => p.name).join(', ')})` }]);
    base = split(preset.hash);
  }
  const configParams = new URLSearchParams(base.config);
  for (const [k, v] of own.config) configParams.set(k, v);
  const labParams = new URLSearchParams(base.lab);
  for (const [k, v] of own.lab) labParams.set(k, v);
  const config = configFromHash(configParams.toString());
  return { preset: presetName, config, lab: parseLab(labParams, DEFAULT_LAB) };
}

/** The full hash of a setting: the config keys that differ from the defaults, then lab keys. */
export function labHash(settings: { config: Config; lab: LabOptions }): string {
  const params = new URLSearchParams(configToHash(parseConfig(settings.config)).replace(/^#/, ''));
  const { lab } = settings;
  if (lab.data !== DEFAULT_LAB.data) params.set('data', lab.data);
  if (lab.subset !== DEFAULT_LAB.subset) params.set('subset', String(lab.subset));
  if (lab.sweep.join(',') !== DEFAULT_LAB.sweep.join(',')) params.set('sweep', lab.sweep.join(','));
  if (lab.expSteps !== DEFAULT_LAB.expSteps) params.set('expSteps', String(lab.expSteps));
  if (lab.eqSteps !== DEFAULT_LAB.eqSteps) params.set('eqSteps', String(lab.eqSteps));
  if (lab.panel !== DEFAULT_LAB.panel) params.set('panel', lab.panel);
  if (lab.mainBackend !== DEFAULT_LAB.mainBackend) params.set('mainBackend', lab.mainBackend);
  const s = params.toString();
  return s ? `#${s}` : '';
}

/** Accepts a preset name, `#hash` or `hash` (the headless command's argument). */
export function settingsFromArgument(arg: string): LabSettings {
  const trimmed = arg.trim();
  if (findPreset(trimmed)) return parseLabHash(`preset=${trimmed}`);
  return parseLabHash(trimmed);
}

// Why the plateau: every run from random weights first sits at loss ln 2 (the aggregator predicts
// 0.5 for every slide); on sparse lesions a run may never leave it. This study trains the lab's
// tiny CNN end to end (Node, cpu backend, in-process ranks, synthetic slides with lesions in a
// given share of a positive slide's tiles) under one change at a time and prints, per setting and
// seed, the step at which the loss leaves the plateau, the final training loss, the validation AUC
// and the attention score (lesion vs other tiles on positive validation slides).
//   npx tsx bench/plateau.ts [--steps 192] [--seeds 7,11] [--lesion-fraction 0.05] [--only base,norm-layer] [--json FILE]
// Findings and figures: docs/PLATEAU.md.
import { writeFileSync } from 'node:fs';
import { mean } from '../src/core/stats.ts';
import { numberOf, parseCli, usageExit } from '../tools/cli.ts';
// tfjs, the engine and the ranks load when there is work (--help and a bad flag answer at once).

const USAGE = `usage: npx tsx bench/plateau.ts [--steps 192] [--seeds 7,11] [--lesion-fraction 0.05] [--slides 32] [--only NAME,...] [--json FILE]
Trains the tiny CNN end to end (cpu, in-process ranks, synthetic slides) once per setting and seed
and prints the step at which the loss leaves ln 2, final loss, validation AUC and attention score.
Settings: ${'' /* filled below */}`;

type Json = Record<string, unknown>;

/** The plateau study's base: the tiny CNN, 16-px tiles, K = 16, one rank, constant learning rate, no regularisation. */
const BASE: Json = {
  encoder: { kind: 'tiny-cnn', width: 8 }, tileSize: 16, tiles: 16, microBatch: 16, ranks: 1, dropout: 0, evalTiles: 0, backend: 'cpu',
  augment: { flip: false, rot90: false, blur: 0 },
  optimizer: { lr: 2e-3, minLr: 2e-3, weightDecay: 0, weightDecayEnd: 0, warmupEpochs: 0, encoderLrScale: 1, accumulateSlides: 1 },
};

/** One change at a time against BASE (and a few combinations). */
export const SETTINGS: { name: string; what: string; over: Json }[] = [
  { name: 'base', what: 'lr 2e-3 for both, no warm-up, no feature norm, positive weight 0.5, 1 slide per update', over: {} },
  { name: 'lr-1e-4', what: 'aggregator and encoder lr 1e-4', over: { optimizer: { lr: 1e-4, minLr: 1e-4 } } },
  { name: 'lr-1e-2', what: 'aggregator and encoder lr 1e-2', over: { optimizer: { lr: 1e-2, minLr: 1e-2 } } },
  { name: 'enc-lr-x10', what: 'encoder lr 10x the aggregator\'s (2e-2)', over: { optimizer: { encoderLrScale: 10 } } },
  { name: 'enc-lr-x0.1', what: 'encoder lr 0.1x the aggregator\'s (2e-4)', over: { optimizer: { encoderLrScale: 0.1 } } },
  { name: 'warmup-1', what: 'linear warm-up over the first epoch', over: { optimizer: { warmupEpochs: 1 } } },
  { name: 'norm-layer', what: 'featureNorm=layer (zero mean, unit variance per tile)', over: { featureNorm: 'layer' } },
  { name: 'norm-l2', what: 'featureNorm=l2 (length sqrt(D) per tile)', over: { featureNorm: 'l2' } },
  { name: 'posweight-0.7', what: 'positiveWeight 0.7 (the paper\'s)', over: { positiveWeight: 0.7 } },
  { name: 'accum-4', what: 'accumulateSlides=4 (mean gradient of 4 slides per update)', over: { optimizer: { accumulateSlides: 4 } } },
  { name: 'frozen', what: 'frozen random encoder (only the aggregator learns)', over: { frozenEncoder: true } },
  { name: 'k-64', what: 'K = 64 tiles per step', over: { tiles: 64, microBatch: 32 } },
  { name: 'norm-layer+accum-4', what: 'featureNorm=layer and accumulateSlides=4', over: { featureNorm: 'layer', optimizer: { accumulateSlides: 4 } } },
  { name: 'norm-layer+k-64', what: 'featureNorm=layer and K = 64', over: { featureNorm: 'layer', tiles: 64, microBatch: 32 } },
];

function merge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof a[k] === 'object' ? merge(a[k] as Json, v as Json) : v;
  return out;
}

/** The plateau level minus this margin, as a moving mean over `PLATEAU_WINDOW` steps, counts as off the plateau. */
export const PLATEAU_MARGIN = 0.08;
export const PLATEAU_WINDOW = 12;

/**
 * The plateau: the mean loss of the best constant prediction on balanced classes. The lab's loss
 * weighs a slide by 2w (positive) or 2(1 - w) (negative), so the best constant P(positive) is w
 * and the level is -w ln w - (1 - w) ln(1 - w): ln 2 at w = 0.5, 0.611 at w = 0.7.
 */
export function plateauLevel(positiveWeight: number): number {
  const w = positiveWeight;
  return -w * Math.log(w) - (1 - w) * Math.log(1 - w);
}

/** The first step (1-based) at which the mean loss of the last PLATEAU_WINDOW steps is below the plateau level - PLATEAU_MARGIN; null if never. */
export function leftPlateauAt(losses: readonly number[], level = Math.LN2): number | null {
  let sum = 0;
  for (let i = 0; i < losses.length; i++) {
    sum += losses[i];
    if (i >= PLATEAU_WINDOW) sum -= losses[i - PLATEAU_WINDOW];
    if (i >= PLATEAU_WINDOW - 1 && sum / PLATEAU_WINDOW < level - PLATEAU_MARGIN) return i + 1;
  }
  return null;
}

export interface PlateauResult {
  setting: string;
  seed: number;
  steps: number;
  leftAt: number | null;
  firstLoss: number;
  finalLoss: number;
  valAuc: number;
  attentionAuc: number;
  precisionAt5: number;
  chance: number;
  wallS: number;
}

export async function runSetting(name: string, over: Json, seed: number, steps: number, lesionFraction: number, count: number): Promise<PlateauResult> {
  const [{ parseConfig }, { Engine }, { syntheticSlides, SyntheticTiles }, { attentionScore }, { inProcessRanks }] = await Promise.all([
    import('../src/core/config.ts'), import('../src/core/engine.ts'), import('../src/core/tiles.ts'), import('../src/core/metrics.ts'), import('../src/transport/in-process.ts'),
  ]);
  const slides = syntheticSlides(count, seed, 40);
  const train = slides.filter((s) => s.split === 'train').length;
  const cfg = parseConfig(merge(merge(BASE, over), { seed, epochs: Math.ceil(steps / train) }));
  const spec = { kind: 'synthetic' as const, seed, slides, lesionFraction };
  const truth = new SyntheticTiles(seed, slides, lesionFraction);
  const engine = new Engine(cfg, slides, inProcessRanks(cfg.ranks), { prefetch: false });
  const t0 = performance.now();
  try {
    await engine.init(spec);
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) losses.push((await engine.trainStep()).loss);
    const ev = await engine.evaluate();
    const att = attentionScore(ev.slides.map((s) => {
      const all = slides.find((x) => x.id === s.slideId)!;
      const lesionTiles = Array.from({ length: all.numTiles }, (_, t) => t).filter((t) => truth.isLesion(s.slideId, t));
      return { label: s.label, attention: s.attention, lesionTiles };
    }));
    return {
      setting: name, seed, steps, leftAt: leftPlateauAt(losses, plateauLevel(cfg.positiveWeight)), firstLoss: mean(losses.slice(0, PLATEAU_WINDOW)), finalLoss: mean(losses.slice(-train)),
      valAuc: ev.auc, attentionAuc: att.auc, precisionAt5: att.precisionAtK, chance: att.chance, wallS: (performance.now() - t0) / 1000,
    };
  } finally {
    await engine.dispose();
  }
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!);
if (isMain) {
  const { values, positionals } = parseCli(process.argv.slice(2), {
    steps: { type: 'string' }, seeds: { type: 'string' }, 'lesion-fraction': { type: 'string' }, slides: { type: 'string' }, only: { type: 'string' }, json: { type: 'string' },
  }, USAGE + SETTINGS.map((s) => `\n  ${s.name.padEnd(20)} ${s.what}`).join(''));
  if (positionals.length) usageExit(`unexpected argument '${positionals[0]}'`, USAGE);
  const steps = numberOf(values.steps, 'steps', 192, true);
  const count = numberOf(values.slides, 'slides', 32, true);
  const lesionFraction = numberOf(values['lesion-fraction'], 'lesion-fraction', 0.05);
  const seeds = (values.seeds ?? '7,11').split(',').map(Number);
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) usageExit('--seeds: comma-separated whole numbers', USAGE);
  const only = values.only?.split(',');
  const unknown = only?.filter((n) => !SETTINGS.some((s) => s.name === n));
  if (unknown?.length) usageExit(`unknown setting '${unknown[0]}'`, USAGE);
  const { tf } = await import('../src/core/tf.ts');
  await tf.setBackend('cpu');
  const chosen = SETTINGS.filter((s) => !only || only.includes(s.name));
  console.log(`plateau study: ${steps} steps, ${count} synthetic slides (40 tiles on average), lesion fraction ${lesionFraction}, seeds ${seeds.join(',')}; off the plateau = mean loss of ${PLATEAU_WINDOW} steps below the best constant prediction's loss (ln 2 at positiveWeight 0.5) - ${PLATEAU_MARGIN} = ${(Math.LN2 - PLATEAU_MARGIN).toFixed(3)}`);
  console.log('| setting | seed | left ln 2 at step | loss first 12 -> last epoch | val AUC | attention AUC | precision@5 (chance) | s |');
  console.log('|---|---|---|---|---|---|---|---|');
  const results: PlateauResult[] = [];
  for (const s of chosen) {
    for (const seed of seeds) {
      const r = await runSetting(s.name, s.over, seed, steps, lesionFraction, count);
      results.push(r);
      console.log(`| ${r.setting} | ${r.seed} | ${r.leftAt ?? 'never'} | ${r.firstLoss.toFixed(3)} -> ${r.finalLoss.toFixed(3)} | ${r.valAuc.toFixed(3)} | ${r.attentionAuc.toFixed(3)} | ${r.precisionAt5.toFixed(2)} (${r.chance.toFixed(2)}) | ${r.wallS.toFixed(0)} |`);
    }
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ kind: 'slide-lab-plateau', steps, count, lesionFraction, seeds, results }, null, 1));
}

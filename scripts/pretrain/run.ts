// The pretrained encoder in the box, made end to end (npm run pretrain):
//   1. generate unlabeled pretraining slides with make-demo's generator under ANOTHER seed than the
//      lab's demo (default 1234 vs the demo's 7): no slide is shared with the demo's validation set;
//   2. cut context windows around their tissue tiles (export-tiles.ts; no labels, no lesion masks);
//   3. SimCLR-pretrain a torchvision ResNet-18 (width 16) on them with PyTorch on the CPU
//      (pretrain.py) -> public/models/<name>.safetensors + <name>.json;
//   4. with --probe <demo.json>: the frozen-feature probe through the lab's own code (probe.ts).
// See docs/PRETRAINING.md for the measured run.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDemo } from '../make-demo.ts';
import { numberOf, parseCli, usageExit } from '../../tools/cli.ts';
import { exportTiles, writeTiles, type ExportOptions } from './export-tiles.ts';
import { recordRun, type PipelineRecord } from './record.ts';

const USAGE = `usage: npm run pretrain -- [--work /tmp/slide-lab-pretrain] [--seed 1234] [--count 48] [--lesion-fraction 0.05]
                       [--minutes 30] [--width 16] [--out public/models/slidelab-simclr-r18w16.safetensors]
                       [--python /usr/bin/python3] [--probe <demo.json>]
Self-supervised (SimCLR) pretraining of the lab's small encoder on unlabeled tiles of generated
slides (another seed than the demo), with PyTorch on the CPU; writes the .safetensors and a .json.
--probe: then the linear probe of the frozen features on that demo (e.g. a sparse one made with
npm run demo -- --out /tmp/demo-sparse --lesion-fraction 0.05 --seed 7).`;

const HERE = dirname(fileURLToPath(import.meta.url));
const LAB_DEMO_SEED = 7;

const { values, positionals } = parseCli(process.argv.slice(2), {
  work: { type: 'string' }, seed: { type: 'string' }, count: { type: 'string' }, 'lesion-fraction': { type: 'string' }, minutes: { type: 'string' },
  width: { type: 'string' }, out: { type: 'string' }, python: { type: 'string' }, probe: { type: 'string' },
}, USAGE);
if (positionals.length) usageExit(`unexpected argument '${positionals[0]}'`, USAGE);
const work = resolve(values.work ?? '/tmp/slide-lab-pretrain');
const seed = numberOf(values.seed, 'seed', 1234, true);
const count = numberOf(values.count, 'count', 48, true);
const lesionFraction = numberOf(values['lesion-fraction'], 'lesion-fraction', 0.05);
const minutes = numberOf(values.minutes, 'minutes', 30);
const width = numberOf(values.width, 'width', 16, true);
const out = resolve(values.out ?? 'public/models/slidelab-simclr-r18w16.safetensors');
const python = values.python ?? '/usr/bin/python3';
if (seed === LAB_DEMO_SEED) usageExit(`--seed ${seed} is the lab demo's seed: pretraining slides must not be the demo's slides`, USAGE);
if (!(count >= 2 && count <= 200 && lesionFraction > 0 && lesionFraction <= 1 && minutes > 0)) usageExit('--count 2..200, --lesion-fraction in (0, 1], --minutes > 0', USAGE);
if (values.probe && !existsSync(values.probe)) usageExit(`--probe ${values.probe}: no such demo.json (make it with npm run demo -- --out ...)`, USAGE);

const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(0);
const command = `npm run pretrain -- ${process.argv.slice(2).join(' ')}`.trim();

console.log(`[${secs()} s] 1/3 slides: seed ${seed}, ${count} slides, lesion fraction ${lesionFraction} -> ${join(work, 'slides')}`);
const slidesDir = join(work, 'slides');
const index = await makeDemo(slidesDir, { seed, count, lesionFraction });
const tSlides = performance.now();

const tilesPath = join(work, 'tiles.npy');
const o: ExportOptions = { tile: 32, context: 0.5, perTile: 4, seed: 1 };
console.log(`[${secs()} s] 2/3 windows: ${o.perTile} per tissue tile, ${o.tile}-px tiles with ${o.context} tile of context -> ${tilesPath}`);
const te = performance.now();
const r = await exportTiles(join(slidesDir, 'demo.json'), o);
writeTiles(tilesPath, join(slidesDir, 'demo.json'), o, r, (performance.now() - te) / 1000);
console.log(`[${secs()} s]     ${r.n} windows of ${r.size} px`);
const tWindows = performance.now();

console.log(`[${secs()} s] 3/3 SimCLR pretraining (${minutes} min budget) -> ${out}`);
const py = spawnSync(python, [join(HERE, 'pretrain.py'), '--tiles', tilesPath, '--out', out, '--minutes', String(minutes), '--width', String(width), '--tile', String(o.tile), '--command', command], { stdio: 'inherit' });
if (py.status !== 0) {
  console.error(`pretrain: ${python} pretrain.py failed (exit ${py.status ?? py.signal}); torch and torchvision are needed (Debian: python3-torch python3-torchvision)`);
  process.exit(1);
}
const s = (a: number, b: number) => Math.round((b - a) / 1000);
const tEnd = performance.now();
const pipeline: PipelineRecord = {
  command,
  slides: { seed, count, lesionFraction, tissueTiles: index.slides.reduce((a, x) => a + x.tissueTiles, 0), note: 'make-demo generator, another seed than the lab demo (7); only files and tissue grids read, never labels or lesionTiles' },
  seconds: { slides: s(t0, tSlides), windows: s(tSlides, tWindows), pretrain: s(tWindows, tEnd), total: s(t0, tEnd) },
};
const jsonPath = out.replace(/\.safetensors$/, '.json');
recordRun(jsonPath, pipeline);
console.log(`[${secs()} s] done: ${out} (${pipeline.seconds.total} s: slides ${pipeline.seconds.slides}, windows ${pipeline.seconds.windows}, pretraining ${pipeline.seconds.pretrain})`);

if (values.probe) {
  const probeJson = join(work, 'probe.json');
  const p = spawnSync('npx', ['tsx', join(HERE, 'probe.ts'), '--demo', values.probe, '--model', out, '--json', probeJson], { stdio: 'inherit' });
  if (p.status !== 0) process.exit(1);
  recordRun(jsonPath, pipeline, JSON.parse(readFileSync(probeJson, 'utf8')));
  console.log(`[${secs()} s] probe done`);
}

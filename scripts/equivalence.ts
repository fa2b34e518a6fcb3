// npm run equivalence -- --ranks 1,2,4 --steps 5 [--json] [--backend cpu|webgpu] [--transport in-process|worker] [--reduction star|shared]
// Trains the same model with N ranks (gather/scatter/pseudo-loss) and with the single-graph
// reference from the same seed, and prints the paper's gradient-equivalence figures (tracked
// layers) and the worst figure over every parameter of encoder and aggregator, with its name.
// Exits 1 if any figure exceeds its tolerance (every parameter: the bound of the backend used).
import { tf } from '../src/core/tf.ts';
import { ConfigError, parseConfig } from '../src/core/config.ts';
import { EVERY_PARAM_TOLERANCE, runEquivalence, TOLERANCE, type EquivalenceRow } from '../src/core/equivalence.ts';
import { syntheticSlides, SyntheticTiles } from '../src/core/tiles.ts';
import { setupNodeBackend } from '../src/runtime/node.ts';
import { inProcessRanks } from '../src/transport/in-process.ts';
import { nodeWorkerRanks } from '../src/transport/node-worker.ts';
import { parseCli, usageExit } from '../tools/cli.ts';

const USAGE = `usage: npm run equivalence -- [--ranks 1,2,4] [--steps 5] [--json] [--backend cpu|webgpu] [--transport in-process|worker]
       [--reduction star|shared] [--tiles 10] [--tile-size 16] [--micro-batch 2] [--encoder tiny-cnn|resnet|tv-resnet|vit] [--seed 7]
N ranks against the single-graph reference from the same seed; exits 1 when a figure exceeds its tolerance.`;

const parsed = parseCli(process.argv.slice(2), {
  ranks: { type: 'string', default: '1,2,4' },
  steps: { type: 'string', default: '5' },
  json: { type: 'boolean', default: false },
  backend: { type: 'string', default: 'cpu' },
  transport: { type: 'string', default: 'worker' },
  reduction: { type: 'string', default: 'star' },
  tiles: { type: 'string', default: '10' },
  'tile-size': { type: 'string', default: '16' },
  'micro-batch': { type: 'string', default: '2' },
  encoder: { type: 'string', default: 'tiny-cnn' },
  seed: { type: 'string', default: '7' },
}, USAGE);
if (parsed.positionals.length) usageExit(`unexpected argument '${parsed.positionals[0]}'`, USAGE);
const values = parsed.values as Record<'ranks' | 'steps' | 'backend' | 'transport' | 'reduction' | 'tiles' | 'tile-size' | 'micro-batch' | 'encoder' | 'seed', string> & { json: boolean };

function fail(message: string): never {
  return usageExit(message, USAGE);
}

const rankCounts = values.ranks.split(',').map(Number);
if (rankCounts.some((n) => !Number.isInteger(n) || n < 1)) fail(`--ranks must be a comma-separated list of positive integers, got '${values.ranks}'`);
if (!['cpu', 'webgpu'].includes(values.backend)) fail(`--backend must be cpu or webgpu, got '${values.backend}'`);
if (!['in-process', 'worker'].includes(values.transport)) fail(`--transport must be in-process or worker, got '${values.transport}'`);
if (!['star', 'shared'].includes(values.reduction)) fail(`--reduction must be star or shared, got '${values.reduction}'`);
if (values.reduction === 'shared' && values.transport !== 'worker') fail('--reduction shared needs --transport worker (ranks block on Atomics.wait)');

const rows: EquivalenceRow[] = [];
const t0 = performance.now();
const main = await setupNodeBackend(values.backend as 'cpu' | 'webgpu').catch((e: Error) => fail(e.message));
for (const ranks of rankCounts) {
  let cfg;
  try {
    cfg = parseConfig({
      seed: values.seed, ranks, tiles: values.tiles, tileSize: values['tile-size'], microBatch: values['micro-batch'],
      backend: values.backend, epochs: 2, encoder: { kind: values.encoder, width: 4 }, optimizer: { lr: 1e-3 },
    });
  } catch (e) {
    fail(e instanceof ConfigError ? e.message : String(e));
  }
  const slides = syntheticSlides(Math.max(4, values.steps ? Number(values.steps) : 4), cfg.seed, 2 * cfg.tiles);
  const workers = values.transport === 'worker' ? nodeWorkerRanks(ranks) : inProcessRanks(ranks);
  try {
    await runEquivalence({
      cfg, slides, ranks: workers, steps: Number(values.steps),
      tileSpec: { kind: 'synthetic', seed: cfg.seed, slides }, referenceTiles: new SyntheticTiles(cfg.seed, slides),
      engineOptions: { reduction: values.reduction as 'star' | 'shared' },
      onRow: (row) => {
        rows.push(row);
        if (!values.json) {
          const worst = Math.max(...Object.values(row.param), ...Object.values(row.grad));
          const { every } = row;
          console.log(
            `N=${row.ranks} step ${row.step}: loss ref ${row.lossReference.toFixed(6)} ranks ${row.lossRanks.toFixed(6)} |diff| ${row.lossDiff.toExponential(2)}  worst normalized L1 ${worst.toExponential(2)}  ${row.pass ? 'ok' : 'FAIL'}\n` +
            `  every parameter (${Object.keys(every.param).length}, bound ${every.tolerance} on ${every.backend}): worst weight ${every.worstParam.value.toExponential(2)} ${every.worstParam.name}, ` +
            `worst gradient ${every.worstGrad.value.toExponential(2)} ${every.worstGrad.name}  ${every.pass ? 'ok' : 'FAIL'}` +
            (every.zeroGrad.length ? `  (no gradient reached ${every.zeroGrad.length}: ${every.zeroGrad.slice(0, 3).join(', ')}${every.zeroGrad.length > 3 ? ', ...' : ''})` : ''),
          );
        }
      },
    });
  } finally {
    for (const w of workers) (w as { terminate?: () => void }).terminate?.();
  }
}
const pass = rows.every((r) => r.pass && r.every.pass);
const doc = {
  pass, tolerance: TOLERANCE, everyParamTolerance: EVERY_PARAM_TOLERANCE, backend: main.backend, adapter: main.adapter, kernels: main.kernels ?? null, transport: values.transport, reduction: values.reduction,
  tfjs: tf.version.tfjs, seconds: (performance.now() - t0) / 1000, rows,
};
if (values.json) console.log(JSON.stringify(doc, null, 2));
else {
  const worst = (pick: (r: EquivalenceRow) => { name: string; value: number }) => rows.map(pick).reduce((a, b) => (b.value > a.value || Number.isNaN(b.value) ? b : a), { name: '', value: 0 });
  const [wp, wg] = [worst((r) => r.every.worstParam), worst((r) => r.every.worstGrad)];
  console.log(`every parameter, all rows: worst weight ${wp.value.toExponential(2)} ${wp.name}, worst gradient ${wg.value.toExponential(2)} ${wg.name} (bound ${rows[0]?.every.tolerance})`);
  console.log(pass ? `all ${rows.length} rows within tolerance (loss ${TOLERANCE.loss}, normalized L1 ${TOLERANCE.grad}; every parameter ${rows[0]?.every.tolerance})` : 'SOME ROWS EXCEED TOLERANCE');
}
process.exit(pass ? 0 : 1);

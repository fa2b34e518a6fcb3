// npx tsx bench/aggregator-readback.ts [--preset first-look] [--backends cpu,webgpu] [--reps 10] [--json]
// What the engine no longer does every step: read the aggregator's weights [P_agg] and its AdamW
// moments (m, v [P_agg]) back from the main context's device (readParams + AdamW.getState), the
// snapshot Engine.trainStep once took so that a rank fault could put the aggregator back. Beside
// it, for scale, the aggregator's own work in a step: forward, loss and backward on K features
// (Engine.aggregatorGrads) and one AdamW update. WebGPU is Dawn through the `webgpu` npm package
// (SwiftShader's Vulkan driver on a GPU-less machine); a backend that is not available is skipped,
// saying why. Figures only, never assertions; median and min over --reps after one warm-up.
import { tf, type Tensor } from '../src/core/tf.ts';
import { attentionDim, featureDim } from '../src/core/config.ts';
import { aggregatorGradients, aggregatorSpecs, dropoutMask, HIDDEN } from '../src/core/models/aggregator.ts';
import { countParams, createParams, disposeParams, readParams } from '../src/core/params.ts';
import { AdamW } from '../src/core/optim/adamw.ts';
import { parseLabHash } from '../src/lab/presets.ts';
import { nodeGpu } from '../src/runtime/node.ts';
import { useCpu, useWebGPU } from '../src/runtime/webgpu.ts';
import { parseCli, numberOf, usageExit } from '../tools/cli.ts';
import { fmt, median, table, timeIt } from './lib/stats.ts';

const USAGE = `usage: npx tsx bench/aggregator-readback.ts [--preset first-look] [--backends cpu,webgpu] [--reps 10] [--json]
  The per-step readback of the aggregator (weights + AdamW moments) that fault rollback once needed, against the aggregator's own step.`;

const { values } = parseCli(process.argv.slice(2), { preset: { type: 'string' }, backends: { type: 'string' }, reps: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
const presetName = values.preset ?? 'first-look';
const backends = (values.backends ?? 'cpu,webgpu').split(',');
for (const b of backends) if (b !== 'cpu' && b !== 'webgpu') usageExit(`--backends takes cpu and/or webgpu, got '${b}'`, USAGE);
const reps = numberOf(values.reps, 'reps', 10, true);
if (reps < 1) usageExit('--reps must be at least 1', USAGE);
let cfg;
try {
  cfg = parseLabHash(`preset=${presetName}`).config;
} catch (e) {
  usageExit(`--preset: ${(e as Error).message}`, USAGE);
}

const d = featureDim(cfg.encoder);
const specs = aggregatorSpecs(d, attentionDim(cfg.aggregator));
const pAgg = countParams(specs);
const k = cfg.tiles;
interface Row { backend: string; adapter: string; readbackMs: { median: number; min: number }; computeMs: number; adamwMs: number; readbackMB: number }
const rows: Row[] = [];
const skipped: string[] = [];

for (const backend of backends) {
  const info = backend === 'cpu' ? await useCpu() : await useWebGPU(await nodeGpu());
  if (info.backend !== backend) {
    skipped.push(`${backend}: ${info.fallbackReason ?? 'not available'}`);
    continue;
  }
  const agg = createParams(specs, cfg.seed);
  const opt = new AdamW(specs, agg, cfg.optimizer);
  const hyper = { lr: cfg.optimizer.lr, weightDecay: cfg.optimizer.weightDecay };
  const features = tf.randomNormal([k, d], 0, 1, 'float32', 1); // [K, D]
  const masks: [Tensor, Tensor] = [0, 1].map((i) => tf.tensor2d(dropoutMask(cfg.seed, 0, k, i, cfg.dropout), [k, HIDDEN])) as [Tensor, Tensor];
  /** The aggregator's computing half (forward, loss, backward), as the engine runs it; returns dL/dθ_agg. */
  const compute = async () => {
    const out = aggregatorGradients(agg, specs, features, 1, cfg.positiveWeight, masks, cfg.featureNorm);
    await Promise.all([out.loss.data(), out.featureGrad.data()]);
    tf.dispose([out.loss, out.logits, out.scores, out.featureGrad]);
    return out.grads;
  };
  const grads = await compute();
  const smallest = [specs.reduce((x, y) => (countParams([x]) <= countParams([y]) ? x : y))];
  // One AdamW update first, so the moments are not zeros (the readback reads the same bytes either way).
  const adamw = await timeIt(async () => {
    opt.apply(grads, hyper);
    await readParams(smallest, agg); // wait for the device's queue (a small read: the smallest parameter)
  }, reps);
  const readback = await timeIt(async () => {
    await readParams(specs, agg);
    await opt.getState();
  }, reps);
  const computeMs = await timeIt(async () => tf.dispose([...(await compute()).values()]), reps);
  rows.push({
    backend,
    adapter: info.adapter ? `${info.adapter.vendor} ${info.adapter.architecture} ${info.adapter.description}`.trim() : '',
    readbackMs: { median: median(readback), min: Math.min(...readback) },
    computeMs: median(computeMs),
    adamwMs: median(adamw),
    readbackMB: (3 * pAgg * 4) / 2 ** 20,
  });
  tf.dispose([features, ...masks, ...grads.values()]);
  opt.dispose();
  disposeParams(agg);
}

const head = `aggregator of ${presetName}: D=${d}, attention ${attentionDim(cfg.aggregator)}, P_agg=${pAgg}, K=${k}; median of ${reps} after one warm-up`;
if (values.json) console.log(JSON.stringify({ preset: presetName, d, pAgg, k, reps, rows, skipped }, null, 2));
else {
  console.log(head);
  console.log(
    table(
      ['backend', 'readback weights+m+v (MB)', 'readback ms (median / min)', 'aggregator fwd+loss+bwd ms', 'AdamW ms', 'adapter'],
      rows.map((r) => [r.backend, fmt(r.readbackMB, 2), `${fmt(r.readbackMs.median)} / ${fmt(r.readbackMs.min)}`, fmt(r.computeMs), fmt(r.adamwMs), r.adapter]),
    ),
  );
  for (const s of skipped) console.log(`skipped ${s}`);
}
process.exit(0); // Dawn's device keeps the event loop alive

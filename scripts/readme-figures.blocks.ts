// The README's figure blocks: which figure of which bench record goes where, in which words.
// scripts/readme-figures.ts renders them between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->`.
// A placeholder names a series and a figure of its newest record in bench/results/:
//   {series:figure|format}   {min series:glob|format}   {max series:glob|format}   (`*` in a glob: any run of characters)
// formats: N (decimals), eN (exponential), gibN (MiB -> GiB), sN (ms -> s), mbN (bytes -> MB), `,` (thousands);
// none: the figure as recorded. Each table row cites the date, load and command of every record it
// uses, an inline block the records' names and dates. Text outside placeholders names the set-up
// only (encoder, K, px): no figures.

export type Block = { name: string } & (
  | { kind: 'table'; header: string[]; citeHeader?: string; rows: string[][] }
  | { kind: 'inline'; text: string }
);

const TP = 'cpu-throughput-worker:results.cpu.throughput';
const E = 'encoder-memory-224';
const L = 'encoder-memory-224-vit-l16';

/** A memory-per-rank row: the three micro-batches' figures joined by ' / '. */
const memRow = (label: string, s: string, enc: string, ms: number[]) => {
  const each = (fig: string, fmt: string) => ms.map((m) => `{${s}:${enc}.m${m}.${fig}|${fmt}}`).join(' / ');
  return [label, `{${s}:${enc}.m1.paramsM|1}M`, ms.join(' / '), `{${s}:${enc}.m1.stateMiB|gib2} GiB`, `${each('peakAboveMiB', 'gib2')} GiB`, `${each('totalMiB', 'gib2')} GiB`, each('wallS', '0'), ms.map((m) => `{${s}:${enc}.m${m}.load1min}`).join(' / ')];
};

export const BLOCKS: Block[] = [
  {
    name: 'performance',
    kind: 'table',
    header: ['what', 'figure'],
    rows: [
      ["our tiled `Conv2DBackpropFilter` vs tfjs's stock WebGPU kernel",
        'x{webgpu-kernels-node:Conv2DBackpropFilter.tiled.speedupMin} to x{webgpu-kernels-node:Conv2DBackpropFilter.tiled.speedupMax} per tiled layer in Node (Dawn + SwiftShader), x{min webgpu-kernels-chromium:Conv2DBackpropFilter.tiled.*.speedup} to x{max webgpu-kernels-chromium:Conv2DBackpropFilter.tiled.*.speedup} in Chromium'],
      ["our tiled `Conv2DBackpropInput` vs tfjs's stock WebGPU kernel",
        'level within noise on SwiftShader: x{min webgpu-kernels-node:Conv2DBackpropInput.cnn4.*.speedup} to x{max webgpu-kernels-node:Conv2DBackpropInput.cnn4.*.speedup} on the four CNN layers (one row that ran the stock kernel in both columns: x{webgpu-kernels-node:Conv2DBackpropInput.resnet.layer2.0.speedup})'],
      ["our WebGPU kernels' gradients vs tfjs's cpu kernels (worst relative L2)",
        'filter gradient {kernel-accuracy-filter-node:worstRelL2} in Node, {kernel-accuracy-filter-chromium:worstRelL2} in Chromium ({kernel-accuracy-filter-node:randomCases} random shapes); input gradient {kernel-accuracy-input-node:worstRelL2} in Node, {kernel-accuracy-input-chromium:worstRelL2} in Chromium ({kernel-accuracy-input-node:randomCases} random shapes)'],
      ["our cpu `Conv2DBackpropFilter` vs tfjs's cpu kernel (tiny CNN, K = 16, 32 px)",
        'end-to-end step x{cpu-kernels-vs-stock:end-to-end-engine.n1.speedup} ({cpu-kernels-vs-stock:end-to-end-engine.n1.oursMs|0} vs {cpu-kernels-vs-stock:end-to-end-engine.n1.stockMs|0} ms), single-graph reference x{cpu-kernels-vs-stock:single-graph-reference.speedup}, encoder forward+backward x{cpu-kernels-vs-stock:encoder-forward-backward-alone.speedup}'],
      ['rank peak tensor memory, K = 64 / 256 / 1024 / 4096 (micro-batch 8, 32 px)',
        '{cpu-memory-k-sweep:k64.rankPeakMiB|2} MiB at every K (max/min {cpu-memory-k-sweep:rankPeakMaxOverMin|3}); the single-graph reference needs {cpu-memory-k-sweep:k64.referencePeakMiB|1} MiB at K = 64 and {cpu-memory-k-sweep:k256.referencePeakMiB|1} MiB at K = 256, so it holds K ≤ {cpu-memory-k-sweep:referenceLargestK} within a {cpu-memory-k-sweep:budgetMiB} MiB budget. Host bytes kept for the recompute grow with K: K·S²·3 ({cpu-memory-k-sweep:k4096.hostInputMiB|0} MiB at K = 4096)'],
      ['communication share of a step (gather + scatter + reduce), ResNet-style encoder, K = 256, 16 px tiles, cpu backend',
        '{cpu-comm-resnet-k256:n1.commSharePct}% for N = 1 and {cpu-comm-resnet-k256:n2.commSharePct}% for N = 2 ({cpu-comm-resnet-k256:n1.bytesPerStep|mb1} and {cpu-comm-resnet-k256:n2.bytesPerStep|mb1} MB per step, of {cpu-comm-resnet-k256:n1.stepMs|s1} and {cpu-comm-resnet-k256:n2.stepMs|s1} s steps)'],
      ['end-to-end step, tiles/s (cpu backend with our kernels, worker ranks, tiny CNN, K = 16, 32 px)',
        `N = 1: {${TP}.end-to-end-engine.n1.ours.k16.tilesPerSec|1}, N = 2: {${TP}.end-to-end-engine.n2.ours.k16.tilesPerSec|1}; single-graph reference {${TP}.single-graph-reference.ours.k16.tilesPerSec|1}; frozen-encoder MIL {${TP}.frozen-encoder-mil-aggregator-only-cached-features.n1.ours.k16.tilesPerSec|1}; encoder forward+backward alone {${TP}.encoder-forward-backward-alone.ours.k16.tilesPerSec|1}`],
      ['tile decode, 256 px JPEG tiles, tiles/s',
        'Chromium native {decode-chromium:native.callingThread.tilesPerSec|0} in the page, {decode-chromium:native.pool1.tilesPerSec|0} in one worker; Chromium JS {decode-chromium:js.callingThread.tilesPerSec|0} / {decode-chromium:js.pool1.tilesPerSec|0}; Node JS {decode-node:js.callingThread.tilesPerSec|0} / {decode-node:js.pool1.tilesPerSec|0}. A pool of 2 workers: x{decode-node:js.pool2.vsPool1} in Node, x{decode-chromium:js.pool2.vsPool1} to x{decode-chromium:native.pool2.vsPool1} in Chromium (2 cores; pools of 4: x{decode-node:js.pool4.vsPool1} / x{decode-chromium:native.pool4.vsPool1})'],
      ['decode left on the critical path with next-step prefetch (K = 32, demo slides), ms',
        'Node: {decode-node:path.prefetchOn.decodeMs} with prefetch against {decode-node:path.n1.prefetchOff.decodeMs} (N = 1) and {decode-node:path.n2.prefetchOff.decodeMs} (N = 2) without. Chromium, two runs: {min decode-chromium:path.*.prefetchOn.decodeMs|0} to {max decode-chromium:path.*.prefetchOn.decodeMs|0} with prefetch against {min decode-chromium:path.*.prefetchOff.decodeMs|0} to {max decode-chromium:path.*.prefetchOff.decodeMs|0} without (steps of {decode-chromium:path.stepMsMin} to {decode-chromium:path.stepMsMax} ms, so the read-ahead has less time)'],
      ['soak: 1,000 steps of the lab\'s Trainer in Chromium, 2 Web Worker ranks on WebGPU (SwiftShader), synthetic tiles, tiny CNN w4, K = 8, 16 px, a validation every 12 steps; at step 1 / 500 / 1,000',
        `live tensors: main context {browser-soak:soak.byStep.step1.main.numTensors} / {browser-soak:soak.byStep.step500.main.numTensors} / {browser-soak:soak.byStep.step1000.main.numTensors}, rank 0 {browser-soak:soak.byStep.step1.ranks.0.numTensors} / {browser-soak:soak.byStep.step500.ranks.0.numTensors} / {browser-soak:soak.byStep.step1000.ranks.0.numTensors}, rank 1 {browser-soak:soak.byStep.step1.ranks.1.numTensors} / {browser-soak:soak.byStep.step500.ranks.1.numTensors} / {browser-soak:soak.byStep.step1000.ranks.1.numTensors}; tensor bytes: main {browser-soak:soak.byStep.step1.main.numBytes} / {browser-soak:soak.byStep.step500.main.numBytes} / {browser-soak:soak.byStep.step1000.main.numBytes}, rank 0 {browser-soak:soak.byStep.step1.ranks.0.numBytes} / {browser-soak:soak.byStep.step500.ranks.0.numBytes} / {browser-soak:soak.byStep.step1000.ranks.0.numBytes}, rank 1 {browser-soak:soak.byStep.step1.ranks.1.numBytes} / {browser-soak:soak.byStep.step500.ranks.1.numBytes} / {browser-soak:soak.byStep.step1000.ranks.1.numBytes}; page JS heap after a forced GC {browser-soak:soak.byStep.step1.heap|mb1} / {browser-soak:soak.byStep.step500.heap|mb1} / {browser-soak:soak.byStep.step1000.heap|mb1} MB; ms per step (median of steps 3-10 / 401-500 / 901-1,000) {browser-soak:soak.byStep.step10.stepMs|0} / {browser-soak:soak.byStep.step500.stepMs|0} / {browser-soak:soak.byStep.step1000.stepMs|0}`],
      ['Stop and Pause in the lab, click to idle (first-look preset: tiny CNN w8, 32 px, K = 16, one micro-batch per rank, 2 Web Worker ranks on WebGPU/SwiftShader), ms',
        'Stop clicked as the ranks start to encode {browser-stop:stop.0.ms|0}, as they start to recompute {browser-stop:stop.1.ms|0} (to \'stopped\', workers disposed; the checkpoint is the last whole step\'s: step {browser-stop:stop.0.checkpointStep}); Pause as they start to encode {browser-stop:stop.2.ms|0} (to \'paused\'; the step is dropped and redone on resume). Pause waits for the checkpoint it saves'],
    ],
  },
  {
    name: 'memory-per-rank',
    kind: 'table',
    header: ['encoder (224 px)', 'parameters', 'micro-batch', 'weights + grad acc. + AdamW', 'measured peak above weights', 'measured total per rank', 'forward + backward (cpu backend, wall s)', 'load average (1 min, start-end)'],
    rows: [
      memRow('ResNet-50 trunc', E, 'resnet50-trunc', [1, 2, 4]),
      memRow('ViT-S/16', E, 'vit-s16', [1, 2, 4]),
      memRow('ViT-B/16', E, 'vit-b16', [1, 2, 4]),
      memRow('ViT-L/16', L, 'vit-l16', [1, 2]),
    ],
  },
  {
    name: 'memory-per-tile',
    kind: 'inline',
    text: `{${E}:vit-s16.perTileMiB|0}, {${E}:vit-b16.perTileMiB|0} and {${L}:vit-l16.perTileMiB|0} MiB per tile for ViT-S/B/L, {${E}:resnet50-trunc.perTileMiB|0} MiB for ResNet-50 trunc`,
  },
  {
    name: 'scaling-memory',
    kind: 'inline',
    text: `ViT-S/16 {${E}:vit-s16.m4.totalMiB|gib1} GiB at micro-batch 4, ViT-B/16 {${E}:vit-b16.m4.totalMiB|gib1} GiB at micro-batch 4, ViT-L/16 (UNI-sized) {${L}:vit-l16.m2.totalMiB|gib1} GiB at micro-batch 2`,
  },
];

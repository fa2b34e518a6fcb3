// Conv2DBackpropFilter and Conv2DBackpropInput on WebGPU: tfjs's stock kernels against ours,
// layer by layer, on the current backend. Runs in Node (Dawn) and in the browser. Each figure is
// the median wall time of one kernel call including a sync (readback of dW or dx, a few KB to MB),
// after a warm-up call that compiles the pipeline. Also checks that both agree (relative L2) on
// the same inputs.
import { tf } from '../../src/core/tf.ts';
import {
  getFilterPlanOptions, getInputPlanOptions, inputGradientWork, planFilterGradient, planInputGradient, registerTrainingKernels,
  unregisterTrainingKernels, type TrainingKernelName,
} from '../../src/kernels/index.ts';
import { compare, outSize } from '../../src/kernels/check.ts';
import { median, timeIt } from './stats.ts';

export interface ConvLayer {
  name: string;
  /** x [B, H, W, CI]. */
  x: [number, number, number, number];
  k: number;
  cout: number;
  stride: number;
}

export interface KernelRow {
  /** Which gradient: dW (Conv2DBackpropFilter) or dx (Conv2DBackpropInput). */
  kernel: TrainingKernelName;
  layer: string;
  x: number[];
  filter: number[];
  gflop: number;
  stockMs: number;
  oursMs: number;
  speedup: number;
  /** Split-K chunks (filter), or stride classes (input). */
  splits: number;
  /** What 'ours' ran: the tiled kernel, or the stock kernel below the size threshold. */
  path: string;
  relL2: number;
}

/** The 4-layer CNN of docs/GPU.md section 6.1 (conv3x3 s2, 3-32-64-128-256) at batch b, size s. */
export function cnn4Layers(b: number, s: number): ConvLayer[] {
  const widths = [3, 32, 64, 128, 256];
  const out: ConvLayer[] = [];
  let h = s;
  for (let i = 0; i < 4; i++) {
    out.push({ name: `cnn4.conv${i + 1}`, x: [b, h, h, widths[i]], k: 3, cout: widths[i + 1], stride: 2 });
    h = Math.ceil(h / 2);
  }
  return out;
}

/** Representative ResNet-18 trunk layers (width w) at batch b, tile size s. */
export function resnetLayers(b: number, s: number, w: number): ConvLayer[] {
  const s2 = Math.ceil(s / 2);
  const s4 = Math.ceil(s2 / 2);
  return [
    { name: 'resnet.stem 7x7 s2', x: [b, s, s, 3], k: 7, cout: w, stride: 2 },
    { name: 'resnet.layer1 3x3', x: [b, s4, s4, w], k: 3, cout: w, stride: 1 },
    { name: 'resnet.layer2.0 3x3 s2', x: [b, s4, s4, w], k: 3, cout: 2 * w, stride: 2 },
    { name: 'resnet.layer3 3x3', x: [b, Math.ceil(s4 / 4), Math.ceil(s4 / 4), 4 * w], k: 3, cout: 4 * w, stride: 1 },
    { name: 'resnet.layer4 3x3', x: [b, Math.ceil(s4 / 8), Math.ceil(s4 / 8), 8 * w], k: 3, cout: 8 * w, stride: 1 },
  ];
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/** One layer's gradient problem ('same' padding): x [B, H, W, CI], dy [B, OH, OW, CO], W [K, K, CI, CO]. */
function layerShapes(l: ConvLayer) {
  const [b, h, w, ci] = l.x;
  const oh = outSize(h, l.k, l.stride, 'same');
  const ow = outSize(w, l.k, l.stride, 'same');
  const filter: [number, number, number, number] = [l.k, l.k, ci, l.cout];
  const dy: [number, number, number, number] = [b, oh, ow, l.cout];
  return { b, h, w, ci, oh, ow, filter, dy, denseGflop: (2 * l.k * l.k * ci * l.cout * b * oh * ow) / 1e9 };
}

/**
 * Times one kernel call (including the readback) with tfjs's stock kernel, then with ours: each
 * after a warm-up call that compiles the pipeline, the median of `reps`. Disposes `inputs`.
 * relL2 = ||ours - stock|| / ||stock||. Leaves our kernels registered.
 */
async function stockVsOurs(
  kernelName: TrainingKernelName, inputs: tf.NamedTensorMap, attrs: object, reps: number,
): Promise<Pick<KernelRow, 'stockMs' | 'oursMs' | 'speedup' | 'relL2'>> {
  const once = async () => {
    const out = tf.engine().runKernel(kernelName, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    const v = (await out.data()) as Float32Array;
    out.dispose();
    return v;
  };
  unregisterTrainingKernels();
  const stockVals = await once();
  const stockMs = median(await timeIt(once, reps, 0));
  registerTrainingKernels({ enabled: true });
  const ourVals = await once();
  const oursMs = median(await timeIt(once, reps, 0));
  tf.dispose(Object.values(inputs));
  return { stockMs, oursMs, speedup: stockMs / oursMs, relL2: compare(ourVals, stockVals).relL2 };
}

const logRow = (log: (s: string) => void, r: KernelRow, what: string) =>
  log(`${r.layer}${what}: stock ${r.stockMs.toFixed(1)} ms, ours ${r.oursMs.toFixed(1)} ms, x${r.speedup.toFixed(1)} (relL2 ${r.relL2.toExponential(1)})`);

/** Times stock vs ours for each layer on the active (webgpu) backend. */
export async function benchFilterKernels(layers: ConvLayer[], reps = 3, log: (s: string) => void = () => {}): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  for (const [i, l] of layers.entries()) {
    const { b, ci, oh, ow, filter, dy, denseGflop } = layerShapes(l);
    const inputs = { x: tf.tensor4d(rand(l.x.reduce((p, q) => p * q, 1), 1 + i), l.x), dy: tf.tensor4d(rand(b * oh * ow * l.cout, 100 + i), dy) };
    const attrs = { strides: [l.stride, l.stride], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: filter };
    const timing = await stockVsOurs('Conv2DBackpropFilter', inputs, attrs, reps);
    const m = l.k * l.k * ci;
    const p = b * oh * ow;
    const splits = planFilterGradient(m, l.cout, p).splits;
    const path = p < getFilterPlanOptions().minReduction ? `stock (P=${p} < ${getFilterPlanOptions().minReduction})` : `tiled, ${splits} split${splits > 1 ? 's' : ''}`;
    const row: KernelRow = { kernel: 'Conv2DBackpropFilter', layer: l.name, x: [...l.x], filter, gflop: denseGflop, ...timing, splits, path };
    logRow(log, row, '');
    rows.push(row);
  }
  return rows;
}

/** Times stock vs ours for Conv2DBackpropInput (dx) on the same layers. */
export async function benchInputKernels(layers: ConvLayer[], reps = 3, log: (s: string) => void = () => {}): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  for (const [i, l] of layers.entries()) {
    const { b, h, w, ci, oh, ow, filter, dy, denseGflop } = layerShapes(l);
    const inputs = { dy: tf.tensor4d(rand(b * oh * ow * l.cout, 100 + i), dy), filter: tf.tensor4d(rand(l.k * l.k * ci * l.cout, 1 + i), filter) };
    const attrs = { inputShape: l.x, strides: [l.stride, l.stride], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
    const timing = await stockVsOurs('Conv2DBackpropInput', inputs, attrs, reps);
    const problem = {
      batch: b, inHeight: h, inWidth: w, inChannels: ci, outChannels: l.cout, filterHeight: l.k, filterWidth: l.k, strideHeight: l.stride, strideWidth: l.stride,
    };
    const { macs } = inputGradientWork(problem);
    const t = planInputGradient(problem);
    const min = getInputPlanOptions().minMacs;
    const path = macs < min ? `stock (${(macs / 1e6).toFixed(2)}M MACs < ${(min / 1e6).toFixed(2)}M)` : `tiled ${t.tm}x${t.tn}x${t.tk}, ${t.classes} class${t.classes > 1 ? 'es' : ''}`;
    // gflop: dense FLOPs of the forward conv, as for the filter rows (our kernel skips the taps a stride leaves empty).
    const row: KernelRow = { kernel: 'Conv2DBackpropInput', layer: l.name, x: [...l.x], filter, gflop: denseGflop, ...timing, splits: t.classes, path };
    logRow(log, row, ' dx');
    rows.push(row);
  }
  return rows;
}

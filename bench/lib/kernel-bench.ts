// Conv2DBackpropFilter on WebGPU: tfjs's stock kernel against ours, layer by layer, on the
// current backend. Runs in Node (Dawn) and in the browser. Each figure is the median wall time of
// one kernel call including a sync (readback of dW, a few KB to MB), after a warm-up call that
// compiles the pipeline. Also checks that both agree (relative L2) on the same inputs.
import { tf } from '../../src/core/tf.ts';
import { getFilterPlanOptions, registerTrainingKernels, unregisterTrainingKernels, planFilterGradient } from '../../src/kernels/index.ts';
import { outSize } from '../../src/kernels/check.ts';
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
  layer: string;
  x: number[];
  filter: number[];
  gflop: number;
  stockMs: number;
  oursMs: number;
  speedup: number;
  splits: number;
  /** What 'ours' ran: the tiled split-K kernel, or the stock kernel for a short reduction. */
  path: string;
  relL2: number;
}

/** The 4-layer CNN of shared/gpu/README.md (conv3x3 s2, 3-32-64-128-256) at batch b, size s. */
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

/** Times stock vs ours for each layer on the active (webgpu) backend. */
export async function benchFilterKernels(layers: ConvLayer[], reps = 3, log: (s: string) => void = () => {}): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  for (const [i, l] of layers.entries()) {
    const [b, h, w, ci] = l.x;
    const oh = outSize(h, l.k, l.stride, 'same');
    const ow = outSize(w, l.k, l.stride, 'same');
    const filter: [number, number, number, number] = [l.k, l.k, ci, l.cout];
    const x = tf.tensor4d(rand(b * h * w * ci, 1 + i), l.x);
    const dy = tf.tensor4d(rand(b * oh * ow * l.cout, 100 + i), [b, oh, ow, l.cout]);
    const run = () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: [l.stride, l.stride], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: filter,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    const once = async () => {
      const out = run();
      const v = (await out.data()) as Float32Array;
      out.dispose();
      return v;
    };
    unregisterTrainingKernels();
    const stockVals = await once();
    const stock = median(await timeIt(once, reps, 0));
    registerTrainingKernels({ enabled: true });
    const ourVals = await once();
    const ours = median(await timeIt(once, reps, 0));
    let d = 0;
    let n = 0;
    for (let j = 0; j < stockVals.length; j++) {
      d += (ourVals[j] - stockVals[j]) ** 2;
      n += stockVals[j] ** 2;
    }
    tf.dispose([x, dy]);
    const m = l.k * l.k * ci;
    const p = b * oh * ow;
    const splits = planFilterGradient(m, l.cout, p).splits;
    const path = p < getFilterPlanOptions().minReduction ? `stock (P=${p} < ${getFilterPlanOptions().minReduction})` : `tiled, ${splits} split${splits > 1 ? 's' : ''}`;
    const row: KernelRow = {
      layer: l.name, x: [...l.x], filter, gflop: (2 * m * l.cout * b * oh * ow) / 1e9,
      stockMs: stock, oursMs: ours, speedup: stock / ours, splits, path, relL2: Math.sqrt(d / n),
    };
    log(`${row.layer}: stock ${stock.toFixed(1)} ms, ours ${ours.toFixed(1)} ms, x${row.speedup.toFixed(1)} (relL2 ${row.relL2.toExponential(1)})`);
    rows.push(row);
  }
  return rows;
}

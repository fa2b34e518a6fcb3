// Gated-attention MIL aggregator ("GMA"), exactly as docs/DESIGN.md section 1.6 defines it:
//   h1 = relu(W1 h) (ndim -> 512), h2 = relu(W2 h1) (512 -> 512), dropout after each,
//   a = tanh(Wa h2) * sigmoid(Wb h2) (512 -> D), s = Wc a (D -> 1), A = softmax_K(s),
//   M = A^T h2 (512), logits = Wcls M (512 -> 2). Xavier-normal weights, zero biases.
import { tf, type Tensor } from '../tf.ts';
import { variableFrom, type ParamSpec, type Params } from '../params.ts';
import { hash32, Stream } from '../rng.ts';

export const HIDDEN = 512;
export const CLASSES = 2;

const dense = (name: string, cin: number, cout: number): ParamSpec[] => [
  { name: `${name}.w`, shape: [cin, cout], init: 'xavier', decay: true },
  { name: `${name}.b`, shape: [cout], init: 'zeros', decay: false },
];

export function aggregatorSpecs(ndim: number, attention: number): ParamSpec[] {
  return [
    ...dense('agg.fc1', ndim, HIDDEN),
    ...dense('agg.fc2', HIDDEN, HIDDEN),
    ...dense('agg.attn_a', HIDDEN, attention),
    ...dense('agg.attn_b', HIDDEN, attention),
    ...dense('agg.attn_c', attention, 1),
    ...dense('agg.classifier', HIDDEN, CLASSES),
  ];
}

export const TRACKED_AGGREGATOR_LAYER = 'agg.classifier.w';

/**
 * Inverted-dropout masks [K, 512] for one layer, keyed by (seed, step, slot, layer, unit): the
 * same in the N-rank engine and in the single-graph reference. Values are 0 or 1/(1-rate).
 */
export function dropoutMask(seed: number, step: number, slots: number, layer: number, rate: number): Float32Array {
  const out = new Float32Array(slots * HIDDEN);
  if (rate <= 0) return out.fill(1);
  const keep = 1 / (1 - rate);
  const threshold = rate * 4294967296;
  for (let k = 0; k < slots; k++) {
    for (let u = 0; u < HIDDEN; u++) {
      out[k * HIDDEN + u] = hash32(seed, Stream.dropout, step, k, layer * HIDDEN + u) < threshold ? 0 : keep;
    }
  }
  return out;
}

export interface AggregatorOutput {
  /** [1, 2] class logits of the slide. */
  logits: Tensor;
  /** [K] raw attention scores s, the heatmap. */
  scores: Tensor;
}

export type FeatureNorm = 'none' | 'layer' | 'l2';

/**
 * h [K, D] -> [K, D], each row normalised: 'layer' to zero mean and unit variance over D (eps 1e-5,
 * no learned scale or shift), 'l2' to length sqrt(D) (eps 1e-6). Differentiable; 'none' returns h.
 */
export function normalizeFeatures(h: Tensor, norm: FeatureNorm): Tensor {
  if (norm === 'none') return h;
  const d = h.shape[h.shape.length - 1]!;
  if (norm === 'layer') {
    const { mean, variance } = tf.moments(h, -1, true); // [K, 1] each
    return h.sub(mean).div(variance.add(1e-5).sqrt());
  }
  const len = h.square().sum(-1, true).add(1e-12).sqrt(); // [K, 1]
  return h.div(len.add(1e-6)).mul(Math.sqrt(d));
}

/** h [K, ndim] features in slot order; masks [K, 512] x2 or null (evaluation); featureNorm applied first. */
export function aggregatorForward(p: Params, h: Tensor, masks: [Tensor, Tensor] | null, featureNorm: FeatureNorm = 'none'): AggregatorOutput {
  h = normalizeFeatures(h, featureNorm);
  const lin = (name: string, x: Tensor) => tf.matMul(x as tf.Tensor2D, p.get(`${name}.w`)! as tf.Tensor2D).add(p.get(`${name}.b`)!);
  let h1 = tf.relu(lin('agg.fc1', h)); // [K, 512]
  if (masks) h1 = h1.mul(masks[0]);
  let h2 = tf.relu(lin('agg.fc2', h1)); // [K, 512]
  if (masks) h2 = h2.mul(masks[1]);
  const a = tf.tanh(lin('agg.attn_a', h2)).mul(tf.sigmoid(lin('agg.attn_b', h2))); // [K, D]
  const s = lin('agg.attn_c', a); // [K, 1]
  const attn = tf.softmax(s.reshape([1, -1])); // [1, K]
  const m = tf.matMul(attn as tf.Tensor2D, h2 as tf.Tensor2D); // [1, 512]
  return { logits: lin('agg.classifier', m), scores: s.reshape([-1]) };
}

/** Class-weighted cross-entropy of one slide: w_y * -log softmax(logits)_y, w = [1 - pw, pw]. */
export function weightedCrossEntropy(logits: Tensor, label: 0 | 1, positiveWeight: number): Tensor {
  const logp = tf.logSoftmax(logits).reshape([-1]); // [2]
  const w = label === 1 ? positiveWeight : 1 - positiveWeight;
  return logp.gather([label]).sum().mul(-2 * w); // x2 so that equal weights (0.5) give plain CE
}

export interface AggregatorGradients {
  loss: Tensor; // scalar
  logits: Tensor; // [1, 2]
  scores: Tensor; // [K]
  /** dL/dp per aggregator parameter name. */
  grads: Map<string, Tensor>;
  /** [K, D] dL/dFeatures: what the main context scatters back to the ranks. */
  featureGrad: Tensor;
}

/** Forward, loss and backward of the aggregator on gathered features [K, D]. The caller disposes the result. */
export function aggregatorGradients(
  p: Params, specs: readonly ParamSpec[], features: Tensor, label: 0 | 1, positiveWeight: number, masks: [Tensor, Tensor] | null, featureNorm: FeatureNorm = 'none',
): AggregatorGradients {
  const h = variableFrom(features.clone(), true, 'features');
  let scores: Tensor | null = null;
  let logits: Tensor | null = null;
  const vars = [...specs.map((s) => p.get(s.name)!), h];
  const { value, grads } = tf.variableGrads(() => {
    const out = aggregatorForward(p, h, masks, featureNorm);
    scores = tf.keep(out.scores);
    logits = tf.keep(out.logits);
    return weightedCrossEntropy(out.logits, label, positiveWeight) as tf.Scalar;
  }, vars);
  h.dispose();
  return {
    loss: value,
    logits: logits!,
    scores: scores!,
    grads: new Map(specs.map((s) => [s.name, grads[p.get(s.name)!.name]])),
    featureGrad: grads[h.name],
  };
}

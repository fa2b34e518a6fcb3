// A rough training-memory estimate per rank, for the Setup panel's warning before a run starts.
// tfjs keeps every intermediate of the recompute's gradient call until it ends, so activation
// memory is (tensors per layer) x micro-batch; parameters cost weights + gradient accumulator +
// this micro-batch's gradients + AdamW's two moments = 5 x 4 bytes each. The constants count the
// tensors each layer's ops produce in our forward (vit.ts, tv-resnet.ts), scaled by a factor
// calibrated against `npm run bench -- --only memory --encoder ...` (the measured tf.profile peaks
// of bench/RESULTS.md at 224 px: the peak above the weights grows by 648 / 1296 / 3431 MiB per
// tile for ViT-S/B/L and 398 MiB for ResNet-50 trunc, on top of two weight-sized gradient buffers).
import type { EncoderConfig } from './config.ts';
import { encoderSpecs } from './models/encoder.ts';
import { countParams, sizeOf } from './params.ts';

export interface MemoryEstimate {
  params: number;
  /** Weights, gradients and AdamW moments (bytes). */
  parameterBytes: number;
  /** Activations held by one micro-batch's forward + backward (bytes). */
  activationBytes: number;
  /** The largest single tensor (bytes): WebGPU refuses a buffer over maxStorageBufferBindingSize. */
  largestTensorBytes: number;
  totalBytes: number;
}

const F32 = 4;

export function estimateEncoderMemory(enc: EncoderConfig, tileSize: number, microBatch: number): MemoryEstimate {
  const specs = encoderSpecs(enc, tileSize);
  const params = countParams(specs);
  const parameterBytes = params * F32 * 5;
  let perTile = 0; // floats held per tile
  let largest = 0; // floats in the largest tensor per tile
  if (enc.kind === 'vit') {
    const g = Math.floor(tileSize / enc.patch);
    const t = g * g + (enc.classToken ? 1 : 0) + enc.regTokens; // tokens
    const d = enc.dim;
    const hidden = enc.mlp === 'swiglu' ? 2 * enc.mlpHidden : enc.mlpHidden;
    // per block: norms, q/k/v and their transposes, projections, residuals ~ 20 T x D; scores and
    // softmax ~ 3 heads x T x T; MLP hidden, activation and its intermediates ~ 6 T x hidden
    perTile = enc.blocks * (20 * t * d + 3 * enc.heads * t * t + 6 * t * hidden) + 4 * t * d;
    largest = Math.max(enc.heads * t * t, t * hidden, 3 * t * d);
  } else {
    // conv outputs: each conv, its norm and its activation keep ~4 maps of the output's size
    let s = tileSize;
    let maps = 0;
    const stem = Math.ceil(s / 2);
    maps += 4 * stem * stem * enc.width;
    s = Math.ceil(stem / 2);
    largest = stem * stem * enc.width;
    const stages = enc.kind === 'tiny-cnn' ? 3 : enc.truncate ? 3 : 4;
    const expansion = enc.kind === 'tv-resnet' && enc.depth === 50 ? 4 : 1;
    const perStage = enc.kind === 'tiny-cnn' ? [1, 1, 1] : enc.depth === 18 ? [2, 2, 2, 2] : [3, 4, 6, 3];
    for (let i = 0; i < stages; i++) {
      if (i > 0) s = Math.ceil(s / 2);
      const c = enc.width * 2 ** i * expansion;
      const convs = expansion === 4 ? 3 : 2;
      maps += perStage[i] * convs * 4 * s * s * c;
      largest = Math.max(largest, s * s * c);
    }
    perTile = maps;
  }
  // Calibration: measured activation growth per tile / this count (ViT 3.5 at S, B and L; ResNet 1.6).
  const calibration = enc.kind === 'vit' ? 3.5 : 1.6;
  const activationBytes = perTile * microBatch * F32 * calibration;
  const largestParam = Math.max(...specs.map((s) => sizeOf(s.shape)));
  const largestTensorBytes = Math.max(largest * microBatch, largestParam) * F32;
  return { params, parameterBytes, activationBytes, largestTensorBytes, totalBytes: parameterBytes + activationBytes };
}

export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;

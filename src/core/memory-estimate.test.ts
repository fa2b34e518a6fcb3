// The Setup panel's memory estimate against what the memory benchmark measured (tf.profile peaks of
// one micro-batch's forward + backward at 224 px on the cpu backend, `npm run bench -- --only memory
// --encoder vit-s16,resnet50-trunc,vit-b16,vit-l16 --micro-batches 1,2,4`, bench/RESULTS.md): the
// estimated activations plus two weight-sized gradient buffers stay within 25% of the measured peak.
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.ts';
import { estimateEncoderMemory } from './memory-estimate.ts';

const ENCODERS = {
  'vit-s16': { kind: 'vit', patch: 16, dim: 384, blocks: 12, heads: 6, mlpHidden: 1536 },
  'vit-b16': { kind: 'vit', patch: 16, dim: 768, blocks: 12, heads: 12, mlpHidden: 3072 },
  'vit-l16': { kind: 'vit', patch: 16, dim: 1024, blocks: 24, heads: 16, mlpHidden: 4096 },
  'resnet50-trunc': { kind: 'tv-resnet', width: 64, depth: 50, truncate: true },
} as const;

// [encoder, micro-batch, measured peak tensor MiB above the weights, measured largest tensor MiB]
const MEASURED: [keyof typeof ENCODERS, number, number, number][] = [
  ['vit-s16', 1, 814, 2.2], ['vit-s16', 2, 1462, 2.3], ['vit-s16', 4, 2758, 4.6],
  ['vit-b16', 1, 1950, 9.0], ['vit-b16', 2, 3246, 9.0], ['vit-b16', 4, 5838, 9.2],
  ['vit-l16', 1, 5744, 16.0], ['vit-l16', 2, 9175, 16.0],
  ['resnet50-trunc', 1, 463, 3.1], ['resnet50-trunc', 2, 861, 6.1], ['resnet50-trunc', 4, 1657, 12.2],
];

describe('memory estimate', () => {
  it.each(MEASURED)('%s, micro-batch %i: within 25%% of the measured peak, largest tensor within 2x', (name, mb, peakMiB, largestMiB) => {
    const cfg = parseConfig({ tileSize: 224, microBatch: mb, encoder: ENCODERS[name] });
    const e = estimateEncoderMemory(cfg.encoder, 224, mb);
    const estimatePeak = (e.activationBytes + 2 * 4 * e.params) / 2 ** 20; // activations + micro-batch gradients + accumulator
    expect(Math.abs(estimatePeak - peakMiB) / peakMiB).toBeLessThan(0.25);
    expect(e.largestTensorBytes / 2 ** 20).toBeGreaterThan(largestMiB / 2);
    expect(e.largestTensorBytes / 2 ** 20).toBeLessThan(largestMiB * 2);
  });
});

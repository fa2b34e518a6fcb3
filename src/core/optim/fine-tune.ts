// Fine-tuning controls for the encoder: layer-wise learning-rate decay (the MAE / BEiT recipe)
// and freezing the stem and the first blocks. Both become one learning-rate multiplier per
// parameter: 0 means frozen (no gradient is computed for it, AdamW leaves it untouched).
import type { EncoderConfig } from '../config.ts';
import type { ParamSpec } from '../params.ts';

/**
 * Multiplier of the encoder learning rate per parameter name. With L = the deepest `layer`
 * (blocks + 1: the final norm), a parameter of layer l gets layerDecay^(L - l): the final norm 1,
 * the last block layerDecay, the patch embedding layerDecay^L. Frozen: the stem (layer 0) when
 * freezeStem or freezeBlocks > 0, and blocks 1..freezeBlocks. Parameters without a layer get 1.
 */
export function encoderLrScales(specs: readonly ParamSpec[], enc: EncoderConfig): Map<string, number> {
  const depth = Math.max(0, ...specs.map((s) => s.layer ?? 0));
  const out = new Map<string, number>();
  for (const s of specs) {
    if (s.layer === undefined) {
      out.set(s.name, 1);
      continue;
    }
    const frozen = (s.layer === 0 && (enc.freezeStem || enc.freezeBlocks > 0)) || (s.layer >= 1 && s.layer <= enc.freezeBlocks);
    out.set(s.name, frozen ? 0 : enc.layerDecay ** (depth - s.layer));
  }
  return out;
}

/** Names of the parameters that train (multiplier > 0), in spec order. */
export function trainableNames(specs: readonly ParamSpec[], scales: Map<string, number>): string[] {
  return specs.filter((s) => (scales.get(s.name) ?? 1) > 0).map((s) => s.name);
}

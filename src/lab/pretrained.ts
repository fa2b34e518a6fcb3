// The lab's pretrained encoder: the file the user picked (kept as a Blob, read lazily), what was
// detected in it, and its weights [P] mapped for the current settings. A link names the file in
// `encoder.pretrained` but cannot carry it, so a run asks for the file when it is missing.
import type { Config } from '../core/config.ts';
import { encoderSpecs } from '../core/models/encoder.ts';
import { loadPretrained, type PretrainedEncoder } from '../core/pretrained.ts';

/** What changes the mapped weights: parameter names and shapes (tile size moves a ViT's position table). */
export function weightsKey(cfg: Config): string {
  return JSON.stringify(encoderSpecs(cfg.encoder, cfg.tileSize).map((s) => [s.name, s.shape]));
}

/**
 * Encoders that ship with the lab (public/models/, made by scripts/pretrain): a link that names
 * one loads it by URL, so it needs no file from the user.
 */
export const BUILTIN_MODELS: Record<string, string> = {
  'slidelab-simclr-r18w16.safetensors': 'SimCLR-pretrained torchvision ResNet-18, width 16, 32 px tiles (docs/PRETRAINING.md)',
};

export const isBuiltinModel = (name: string) => Object.hasOwn(BUILTIN_MODELS, name);

export class PretrainedSlot {
  /** The loaded file and its mapping for `key`; null when none is loaded. */
  loaded: (PretrainedEncoder & { key: string }) | null = null;
  private blob: Blob | null = null;

  /** Reads `blob` as a pretrained encoder for `cfg`; on failure nothing changes and the error names the file. */
  async load(blob: Blob, file: string, cfg: Config, signal?: AbortSignal): Promise<PretrainedEncoder> {
    const p = await loadPretrained(blob, file, cfg, signal);
    this.blob = blob;
    this.loaded = { ...p, key: weightsKey({ ...cfg, encoder: p.encoder }) };
    return p;
  }

  clear(): void {
    this.loaded = null;
    this.blob = null;
  }

  /**
   * The initial encoder weights [P] a run with `cfg` starts from: undefined for random weights,
   * the file's weights (re-mapped when the tile size or architecture changed). Throws, naming the
   * file, when the config names a pretrained file that has not been loaded in this page.
   */
  async weightsFor(cfg: Config, signal?: AbortSignal): Promise<Float32Array | undefined> {
    const name = cfg.encoder.pretrained;
    if (!name) return undefined;
    if (!this.blob || !this.loaded || this.loaded.file !== name) {
      throw new Error(`this run starts from the pretrained encoder "${name}": load that file in Setup (Load pretrained encoder…); a link cannot carry it`);
    }
    const key = weightsKey(cfg);
    if (this.loaded.key !== key) await this.load(this.blob, name, cfg, signal);
    if (this.loaded.key !== key) throw new Error(`${name}: the settings changed the architecture; load the file again`);
    return this.loaded.weights;
  }
}

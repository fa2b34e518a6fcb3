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

  /** `fetcher` and `modelsUrl`: where the built-in encoders are served (default /models/). */
  constructor(private readonly served: { fetcher?: typeof fetch; modelsUrl?: string } = {}) {}

  /** The file of a built-in encoder (BUILTIN_MODELS), fetched from where the lab serves them. */
  async builtinBlob(name: string, signal?: AbortSignal): Promise<Blob> {
    if (!isBuiltinModel(name)) throw new Error(`${name}: not a built-in encoder`);
    const res = await (this.served.fetcher ?? fetch.bind(globalThis))(`${this.served.modelsUrl ?? '/models/'}${name}`, { signal });
    if (!res.ok) throw new Error(`${name}: the built-in encoder could not be fetched (HTTP ${res.status})`);
    return res.blob();
  }

  /**
   * [P] the encoder weights a run or job with `cfg` starts from: undefined for the seed's random
   * weights (or when `restoring` a checkpoint without a loaded file: its weights replace them),
   * else the loaded file's, fetching a built-in encoder the config names first (`onFetched` sees
   * it). Throws, naming the file, when the config names a file the page has not loaded.
   */
  async initialWeights(cfg: Config, restoring: boolean, onFetched: (p: PretrainedEncoder) => void, signal?: AbortSignal): Promise<Float32Array | undefined> {
    if (restoring && !this.loaded) return undefined;
    const wanted = cfg.encoder.pretrained;
    if (wanted && !restoring && isBuiltinModel(wanted) && this.loaded?.file !== wanted) {
      onFetched(await this.load(await this.builtinBlob(wanted, signal), wanted, cfg, signal));
    }
    return this.weightsFor(cfg, signal);
  }

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

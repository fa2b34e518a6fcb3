import { describe, expect, it } from 'vitest';
import { ConfigError, configFromHash, configToHash, DEFAULT_CONFIG, parseConfig } from './config.ts';

describe('config schema', () => {
  it('fills defaults and round-trips through the URL hash', () => {
    const cfg = parseConfig({ tiles: 64, ranks: 4, encoder: { kind: 'resnet', width: 16 }, augment: { blur: 0 }, frozenEncoder: true });
    const hash = configToHash(cfg);
    expect(hash).toContain('tiles=64');
    expect(hash).toContain('encoder.kind=resnet');
    expect(hash).not.toContain('seed='); // defaults are left out of links
    expect(configFromHash(hash)).toEqual(cfg);
    expect(configToHash(DEFAULT_CONFIG)).toBe('');
  });

  it('names the field of a bad value', () => {
    expect(() => parseConfig({ tiles: 0 })).toThrow(ConfigError);
    // No try/catch: a call that does not throw, or throws something else, fails here.
    const bad = () => parseConfig({ tiles: 0, encoder: { kind: 'transformer-xl', mean: '1,2' } });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(expect.objectContaining({
      problems: expect.arrayContaining(['tiles', 'encoder.kind', 'encoder.mean'].map((field) => expect.objectContaining({ field }))),
    }));
    expect(() => configFromHash('#tiles=abc')).toThrow(/tiles/);
    expect(() => configFromHash('#tilez=4')).toThrow(/tilez: unknown setting/);
    expect(() => parseConfig({ optimizer: { lr: 1e-4, minLr: 1e-3 } })).toThrow(/optimizer.minLr/);
  });

  it('round-trips a ViT architecture and its input normalisation through the hash', () => {
    const cfg = parseConfig({ tileSize: 224, encoder: { kind: 'vit', patch: 16, dim: 384, blocks: 12, heads: 6, mlpHidden: 1536, regTokens: 4, pool: 'cls+mean', mean: '0.5,0.5,0.5', std: '0.5,0.5,0.5', pretrained: 'kaiko-vits16.safetensors', layerDecay: 0.75 } });
    expect(configFromHash(configToHash(cfg))).toEqual(cfg);
    expect(configToHash(cfg)).toContain('encoder.pretrained=kaiko-vits16.safetensors');
  });

  it('parses booleans and numbers from strings', () => {
    const cfg = configFromHash('#frozenEncoder=true&optimizer.lr=0.01&augment.flip=false');
    expect(cfg.frozenEncoder).toBe(true);
    expect(cfg.optimizer.lr).toBe(0.01);
    expect(cfg.augment.flip).toBe(false);
  });
});

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
    try {
      parseConfig({ tiles: 0, encoder: { kind: 'vit' } });
    } catch (e) {
      const fields = (e as ConfigError).problems.map((p) => p.field);
      expect(fields).toContain('tiles');
      expect(fields).toContain('encoder.kind');
    }
    expect(() => configFromHash('#tiles=abc')).toThrow(/tiles/);
    expect(() => configFromHash('#tilez=4')).toThrow(/tilez: unknown setting/);
    expect(() => parseConfig({ optimizer: { lr: 1e-4, minLr: 1e-3 } })).toThrow(/optimizer.minLr/);
  });

  it('parses booleans and numbers from strings', () => {
    const cfg = configFromHash('#frozenEncoder=true&optimizer.lr=0.01&augment.flip=false');
    expect(cfg.frozenEncoder).toBe(true);
    expect(cfg.optimizer.lr).toBe(0.01);
    expect(cfg.augment.flip).toBe(false);
  });
});

// The Setup form's grouping: every config leaf in exactly one group with a human label and help,
// relevance by encoder kind, and the form's round trip keeping fields that are hidden.
import { describe, expect, it } from 'vitest';
import { configFromHash, configToHash, parseConfig } from '../core/config.ts';
import { configFields, draftOf, ENCODER_KINDS, FIELD_META, GROUPS, groupFields, HELP, labelOf, rawFromDraft, relevantFor, setPath } from './config-fields.ts';

const fields = configFields();
const paths = fields.map((f) => f.path);

describe('Setup form groups', () => {
  it('puts every config leaf in exactly one group, with a label and a line of help', () => {
    expect(paths.length).toBeGreaterThanOrEqual(50);
    const grouped = groupFields(fields);
    expect(grouped.map((g) => g.group)).toEqual([...GROUPS]);
    const seen = grouped.flatMap((g) => g.fields.map((f) => f.path));
    expect([...seen].sort()).toEqual([...paths].sort());
    expect(new Set(seen).size).toBe(seen.length);
    for (const p of paths) {
      expect(FIELD_META[p], `${p} has no group`).toBeDefined();
      expect(GROUPS).toContain(FIELD_META[p].group);
      expect(labelOf(p), `${p} has no human label`).not.toBe(p);
      expect(labelOf(p).trim().length).toBeGreaterThan(1);
      expect(HELP[p], `${p} has no help`).toBeTruthy();
    }
    // No stale entries for fields the schema no longer has.
    expect(Object.keys(FIELD_META).sort()).toEqual([...paths].sort());
    for (const g of grouped) expect(g.fields.length, `${g.group} is empty`).toBeGreaterThan(0);
  });

  it('groups as documented', () => {
    const groupOf = (p: string) => FIELD_META[p].group;
    for (const p of paths.filter((q) => q.startsWith('encoder.'))) expect(groupOf(p)).toBe('Model');
    for (const p of paths.filter((q) => q.startsWith('optimizer.'))) expect(groupOf(p)).toBe('Optimizer');
    for (const p of paths.filter((q) => q.startsWith('augment.'))) expect(groupOf(p)).toBe('Data');
    expect(['aggregator', 'dropout', 'frozenEncoder'].map(groupOf)).toEqual(['Model', 'Model', 'Model']);
    expect(['tileSize', 'tiles', 'evalTiles'].map(groupOf)).toEqual(['Data', 'Data', 'Data']);
    expect(['epochs', 'positiveWeight', 'seed'].map(groupOf)).toEqual(['Optimizer', 'Optimizer', 'Optimizer']);
    expect(['ranks', 'microBatch', 'backend'].map(groupOf)).toEqual(['Ranks', 'Ranks', 'Ranks']);
    expect(labelOf('optimizer.weightDecayEnd')).toBe('Weight decay at the end');
  });

  it('shows each encoder kind only its own fields', () => {
    const shown = (kind: string) => paths.filter((p) => relevantFor(p, kind));
    const vitOnly = ['patch', 'dim', 'blocks', 'heads', 'mlpHidden', 'mlp', 'layerScale', 'classToken', 'regTokens', 'noEmbedClass', 'posGrid', 'pool', 'fcNorm', 'lnEps', 'qkvBias'].map((k) => `encoder.${k}`);
    for (const p of vitOnly) {
      expect(relevantFor(p, 'vit')).toBe(true);
      for (const k of ['tiny-cnn', 'resnet', 'tv-resnet']) expect(relevantFor(p, k)).toBe(false);
    }
    expect(ENCODER_KINDS.filter((k) => relevantFor('encoder.norm', k))).toEqual(['resnet']);
    expect(ENCODER_KINDS.filter((k) => relevantFor('encoder.truncate', k))).toEqual(['tv-resnet']);
    expect(ENCODER_KINDS.filter((k) => relevantFor('encoder.depth', k))).toEqual(['resnet', 'tv-resnet']);
    expect(relevantFor('encoder.width', 'vit')).toBe(false);
    for (const kind of ENCODER_KINDS) {
      // Everything outside the encoder, and the kind picker itself, always shows.
      for (const p of paths.filter((q) => !q.startsWith('encoder.'))) expect(relevantFor(p, kind)).toBe(true);
      expect(shown(kind)).toContain('encoder.kind');
      expect(shown(kind)).toContain('encoder.mean');
    }
    expect(shown('tiny-cnn').filter((p) => p.startsWith('encoder.'))).toEqual(['encoder.kind', 'encoder.width', 'encoder.mean', 'encoder.std']);
  });

  it('applies the values of hidden fields unchanged (the form submits every field)', () => {
    // A tiny-cnn run whose hidden ViT and ResNet fields carry non-default values.
    let cfg = configFromHash('#encoder.kind=tiny-cnn&encoder.patch=14&encoder.dim=384&encoder.heads=6&encoder.pool=cls%2Bmean&encoder.lnEps=1e-12&encoder.norm=frozen-bn&encoder.truncate=true&encoder.pretrained=x.safetensors&encoder.layerDecay=0.65&optimizer.weightDecayEnd=0.2&augment.rot90=false');
    cfg = setPath(cfg, 'encoder.qkvBias', false);
    const draft = draftOf(fields, cfg);
    const hidden = paths.filter((p) => !relevantFor(p, draft['encoder.kind']));
    expect(hidden).toContain('encoder.patch');
    expect(hidden).toContain('encoder.norm');
    const back = parseConfig(rawFromDraft(fields, draft));
    expect(back).toEqual(cfg);
    expect(configToHash(back)).toBe(configToHash(cfg));
    // Switching the kind in the form keeps what the other kind's fields held.
    const vit = parseConfig(rawFromDraft(fields, { ...draft, 'encoder.kind': 'vit' }));
    expect(vit.encoder).toMatchObject({ kind: 'vit', patch: 14, dim: 384, heads: 6, pool: 'cls+mean', lnEps: 1e-12, qkvBias: false, norm: 'frozen-bn', truncate: true });
  });
});

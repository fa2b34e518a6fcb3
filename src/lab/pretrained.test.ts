// The lab with a pretrained encoder: load a PyTorch-made file, train from it, checkpoint and
// resume, export it back; a link that names a file the page has not loaded asks for it; bad files
// leave the current settings and run as they were.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openWeightFile } from '../core/weights/index.ts';
import { LabSession, type SessionDeps } from './session.ts';
import { MemoryCheckpointStore } from './checkpoints.ts';
import { testDeps, until as waitUntil } from './testing/session-deps.ts';

const DIR = new URL('../../fixtures/pretrained/', import.meta.url);
/** The ViT steps are slower: two minutes to wait, not one. */
const until = (cond: () => boolean) => waitUntil(cond, 120_000);
/** One step, then wait until the loop parks (or fails). */
const stepOnce = async (lab: LabSession) => {
  const n = lab.history.steps.length;
  await lab.step();
  await until(() => (lab.history.steps.length > n && lab.state === 'paused') || lab.lastError !== null).catch((e) => {
    throw new Error(`${e.message}: state ${lab.state}, steps ${lab.history.steps.length}`);
  });
};
const blobOf = (name: string) => new Blob([readFileSync(new URL(name, DIR))]);
// The timm-style ViT fixture: dim 64, 4 heads (weights cannot tell heads), 32 px tiles.
const HASH = 'data=synthetic&tileSize=32&tiles=4&microBatch=2&ranks=2&epochs=1&augment.blur=0&backend=cpu&subset=6&encoder.kind=vit&encoder.dim=64&encoder.heads=4';

function deps(store = new MemoryCheckpointStore()): SessionDeps {
  return testDeps({ store, checkpointEvery: 1 });
}

describe('the lab with a pretrained encoder', () => {
  it('loads a checkpoint, starts every replica from it, trains, checkpoints and resumes', async () => {
    const store = new MemoryCheckpointStore();
    const lab = new LabSession(deps(store), HASH);
    await lab.loadDefaultData();
    const p = await lab.loadPretrained(blobOf('timm-vit-x.pt'), 'timm-vit-x.pt');
    expect(lab.lastError).toBeNull();
    expect(p!.family).toBe('timm-vit');
    expect(lab.config.encoder).toMatchObject({ kind: 'vit', regTokens: 4, layerScale: true, mlp: 'swiglu', heads: 4, pretrained: 'timm-vit-x.pt' });
    expect(lab.hash).toContain('encoder.pretrained=timm-vit-x.pt');
    await stepOnce(lab);
    expect(lab.lastError).toBeNull();
    const trainer = lab.trainer!;
    expect(lab.history.steps).toHaveLength(1);
    // every replica started from the file: after one step they moved only a little from it
    const after = await trainer.engine.encoderWeights();
    let diff = 0;
    for (let i = 0; i < after.length; i++) diff = Math.max(diff, Math.abs(after[i] - p!.weights[i]));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(5e-3); // a few AdamW steps of lr 1e-3
    await lab.stop();
    const c = await store.load('latest');
    expect(c?.step).toBe(1);

    // A new page opened on the same link: no file yet -> a clear request for it.
    const lab2 = new LabSession(deps(store), lab.hash);
    await lab2.loadDefaultData();
    await stepOnce(lab2);
    expect(lab2.lastError?.message).toMatch(/timm-vit-x\.pt.*load that file/);
    // Resuming the checkpoint needs no file: the checkpoint carries the weights.
    expect(await lab2.restore(c!)).toBe(true);
    await until(() => lab2.state === 'paused');
    expect(Array.from(await lab2.trainer!.engine.encoderWeights())).toEqual(Array.from(after));
    await lab2.stop();

    // Export: timm's own names, loadable again.
    const out = await lab.exportEncoderSafetensors();
    expect(out.name).toMatch(/\.safetensors$/);
    const wf = await openWeightFile(new Blob([out.bytes as Uint8Array<ArrayBuffer>]), out.name);
    expect(wf.tensors.has('blocks.0.attn.qkv.weight')).toBe(true);
    expect(wf.metadata['slide-lab.family']).toBe('timm-vit');
  });

  it('a bad file is reported by name and reason; the settings and the run stay as they were', async () => {
    const lab = new LabSession(deps(), HASH.replace('encoder.kind=vit&encoder.dim=64&encoder.heads=4', 'encoder.width=4'));
    await lab.loadDefaultData();
    await stepOnce(lab);
    const before = await lab.trainer!.engine.encoderWeights();
    const cfg = JSON.stringify(lab.config);
    expect(await lab.loadPretrained(new Blob([new Uint8Array(100)]), 'zeros.safetensors')).toBeNull();
    expect(lab.lastError?.where).toBe('pretrained encoder');
    expect(lab.lastError?.message).toMatch(/zeros\.safetensors/);
    expect(await lab.loadPretrained(blobOf('evil.pt'), 'evil.pt')).toBeNull();
    expect(lab.lastError?.message).toMatch(/evil\.pt/);
    expect(JSON.stringify(lab.config)).toBe(cfg);
    expect(Array.from(await lab.trainer!.engine.encoderWeights())).toEqual(Array.from(before));
    await lab.stop();
  });

  it('the frozen-encoder baseline works with a loaded encoder: features stay the file\'s', async () => {
    const lab = new LabSession(deps(), `${HASH}&frozenEncoder=true`);
    await lab.loadDefaultData();
    const p = await lab.loadPretrained(blobOf('timm-vit-x.safetensors'), 'timm-vit-x.safetensors');
    await stepOnce(lab);
    await stepOnce(lab);
    expect(lab.lastError).toBeNull();
    expect(Array.from(await lab.trainer!.engine.encoderWeights())).toEqual(Array.from(p!.weights));
    await lab.stop();
  });
});

describe('the built-in pretrained encoder', () => {
  it('a link that names it loads it by URL, with no file from the user, and training starts from it', async () => {
    const served: string[] = [];
    const fetcher = (async (url: string) => {
      served.push(url);
      return new Response(new Uint8Array(readFileSync(new URL(`../../public${url}`, import.meta.url))));
    }) as unknown as typeof fetch;
    const lab = new LabSession({ ...deps(), fetcher }, 'data=synthetic&subset=6&tiles=4&microBatch=2&ranks=2&epochs=1&backend=cpu&preset=pretrained-first-look');
    expect(lab.config.encoder).toMatchObject({ kind: 'tv-resnet', width: 16, pretrained: 'slidelab-simclr-r18w16.safetensors' });
    await lab.loadDefaultData();
    await stepOnce(lab);
    expect(lab.lastError).toBeNull();
    expect(served).toEqual(['/models/slidelab-simclr-r18w16.safetensors']);
    expect(lab.pretrained.loaded?.family).toBe('tv-resnet');
    const w = await lab.trainer!.engine.encoderWeights();
    let diff = 0;
    for (let i = 0; i < w.length; i++) diff = Math.max(diff, Math.abs(w[i] - lab.pretrained.loaded!.weights[i]));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(1e-3); // one step at encoder lr 1e-4 from the shipped weights
    await lab.stop();
  });
});

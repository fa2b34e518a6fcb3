// A pretrained encoder in the lab, in headless Chromium with 2 Web Worker ranks on WebGPU
// (SwiftShader here; a real GPU with SLIDE_LAB_GPU=1). One page, in order: a bad file is refused by
// name and changes nothing; the PyTorch-made timm ViT checkpoint (torch.save zip: cls + 4
// registers, LayerScale, SwiGLU, no_embed_class, fc_norm; dim 64, 4 heads) loads through the
// Setup panel's file input and its report shows; a few fine-tuning steps from it (loss, step
// times, adapters, the weights moved from the file's); the encoder exported as safetensors in
// timm's names. Then the same link in a fresh browser context, without the file: the panel asks
// for it and training refuses, naming it. About 170 s on 2 CPU cores, most of it the first step:
// both workers compiling the ViT's WebGPU shaders on SwiftShader (later steps take about 5 s).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { artifactPath, labUrl, watchPage } from '../tools/chromium.ts';
import { downloadsOf, figures, labBrowserHooks, waitLab } from './lab-page.ts';
import { openWeightFile } from '../src/core/weights/index.ts';

const FILE = 'timm-vit-x.pt';
const FIXTURE = `fixtures/pretrained/${FILE}`;
// Synthetic slides (6: 4-5 train, the rest val), K = 4 tiles of 32 px, one micro-batch of 2 per
// rank. Shapes cannot tell a ViT's head count: the link says 4 (dim 64) before the file loads.
const HASH = 'data=synthetic&subset=6&tileSize=32&tiles=4&microBatch=2&ranks=2&epochs=2&backend=webgpu&augment.blur=0&encoder.kind=vit&encoder.dim=64&encoder.heads=4';
/** Fine-tuning steps; fewer than one epoch, so no validation pass runs in between. */
const STEPS = 3;
/** timm's names for this architecture (registers, LayerScale, packed SwiGLU, fc_norm, no norm / head). */
const TIMM_NAMES = ['cls_token', 'reg_token', 'pos_embed', 'patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', 'blocks.0.ls1.gamma', 'blocks.1.mlp.fc1.weight', 'blocks.1.ls2.gamma', 'fc_norm.weight'];

let browser: Browser;
let page: Page;
labBrowserHooks((b) => ({ browser, page } = b), 30);

const labState = (p: Page) =>
  p.evaluate(() => {
    const lab = (window as any).slideLab;
    return { config: JSON.stringify(lab.config), hash: lab.hash as string, error: lab.lastError as { where: string; message: string } | null, loaded: lab.pretrained.loaded?.file ?? null };
  });

async function pickEncoder(p: Page, file: { name: string; buffer: Buffer }): Promise<void> {
  await p.setInputFiles('[data-testid=pretrained-input]', { name: file.name, mimeType: 'application/octet-stream', buffer: file.buffer });
}

/** Loads the fixture through the Setup panel and waits for its report. */
async function loadFixture(p: Page): Promise<void> {
  await pickEncoder(p, { name: FILE, buffer: readFileSync(FIXTURE) });
  await p.waitForSelector('[data-testid=pretrained-summary]', { timeout: 30_000 });
  await waitLab(p, `lab.pretrained.loaded && lab.pretrained.loaded.file === '${FILE}' && lab.state === 'ready'`, 30_000);
}

/**
 * One Step click, until the run parks after it. Vite's dev server may reload the page once when
 * the first rank worker imports dependencies it had not optimised; a reload drops the loaded
 * file with the page (a link cannot carry it), so it is loaded again before clicking again.
 */
async function stepOnce(p: Page, steps: number): Promise<void> {
  for (let attempt = 0; attempt < 4; attempt++) {
    let reloaded = false;
    const onLoad = () => (reloaded = true);
    p.on('load', onLoad);
    try {
      await p.click('[data-testid=btn-step]');
      const t0 = Date.now();
      while (!reloaded) {
        const s = await p.evaluate(() => {
          const lab = (window as any).slideLab;
          return lab && { n: lab.history.steps.length as number, state: lab.state as string, error: lab.lastError?.message as string | undefined };
        }).catch(() => null);
        if (s && s.n >= steps && s.state === 'paused') return;
        if (s?.error) throw new Error(`step ${steps}: ${s.error}`);
        if (Date.now() - t0 > 300_000) throw new Error(`step ${steps} did not finish: ${JSON.stringify(s)}`);
        await p.waitForTimeout(250);
      }
    } finally {
      p.off('load', onLoad);
    }
    console.log('the page reloaded after Step (Vite optimised new dependencies); loading the file and stepping again');
    await waitLab(p, "lab.data && lab.state === 'ready'", 60_000);
    await loadFixture(p);
  }
  throw new Error('the page kept reloading after Step');
}

describe('a pretrained encoder in the lab, in Chromium with 2 Web Worker ranks on WebGPU', () => {
  let hash = '';

  it('refuses a bad file by name and leaves the settings as they were', async () => {
    await page.goto(labUrl(`/#${HASH}`));
    await waitLab(page, "lab.data && lab.data.name === 'synthetic' && lab.state === 'ready'", 60_000);
    await page.waitForLoadState('networkidle'); // Vite may reload once after optimising late dependencies
    await waitLab(page, "lab.data && lab.state === 'ready'", 60_000);
    await page.waitForSelector('[data-testid=pretrained-none]');
    const before = await labState(page);

    // A pickle that asks to run os.system: refused without executing anything.
    await pickEncoder(page, { name: 'evil.pt', buffer: readFileSync('fixtures/pretrained/evil.pt') });
    await expect.poll(() => page.locator('[data-testid=lab-error]').textContent(), { timeout: 30_000 }).toMatch(/pretrained encoder:.*evil\.pt.*posix\.system/);
    // ...and in the Setup panel, where the file was picked.
    expect(await page.locator('[data-testid=pretrained-error]').textContent()).toMatch(/^evil\.pt: /);
    let after = await labState(page);
    expect(after.error?.where).toBe('pretrained encoder');
    expect([after.config, after.hash, after.loaded]).toEqual([before.config, before.hash, null]);
    expect(await page.locator('[data-testid=pretrained-none]').count()).toBe(1);
    await page.locator('[data-testid=pretrained-panel]').screenshot({ path: artifactPath('pretrained-error.png') });

    // A truncated copy of the good checkpoint (the zip's central directory is gone). In memory:
    // the page reads a picked file lazily, so one on disk must outlive the reading.
    await pickEncoder(page, { name: 'cut-vit.pt', buffer: readFileSync(FIXTURE).subarray(0, 150_000) });
    await expect.poll(() => page.locator('[data-testid=lab-error]').textContent(), { timeout: 30_000 }).toMatch(/pretrained encoder:.*cut-vit\.pt: .*(zip|truncated|end of central directory)/i);
    expect(await page.locator('[data-testid=pretrained-error]').textContent()).toMatch(/^cut-vit\.pt: /);
    after = await labState(page);
    console.log(JSON.stringify({ badFileErrors: ['evil.pt', after.error?.message] }));
    expect([after.config, after.hash, after.loaded]).toEqual([before.config, before.hash, null]);
    expect(page.url()).not.toContain('encoder.pretrained');
    await page.click('[data-testid=lab-error] button'); // dismiss: the panel's line goes with it
    expect(await page.locator('[data-testid=pretrained-error]').count()).toBe(0);
  }, 120_000);

  it('loads the timm checkpoint through the Setup panel and shows what it found', async () => {
    await loadFixture(page);
    const summary = await page.locator('[data-testid=pretrained-summary]').textContent();
    expect(summary).toContain(`${FILE}: timm-vit, ViT patch 8, dim 64, 2 blocks, 4 heads, SwiGLU MLP 128, LayerScale, 4 registers, mean pooling`);
    expect(summary).toMatch(/0\.098M parameters; feature size 64/);
    const notes = await page.locator('[data-testid=pretrained-notes] li').allTextContents();
    expect(notes).toEqual(expect.arrayContaining(["nested under 'teacher'", "stripped prefix 'backbone.' from every name", 'attention heads: 4, from the settings (shapes cannot tell)']));
    expect(notes.some((n) => /packed SwiGLU/.test(n))).toBe(true);
    expect(notes.some((n) => /no_embed_class/.test(n))).toBe(true);
    expect(await page.locator('[data-testid=pretrained-unused]').textContent()).toMatch(/every tensor in the file is used/i);
    expect(await page.locator('[data-testid=pretrained-memory]').textContent()).toMatch(/^Estimated memory per rank: weights, gradients and AdamW 1\.9 MiB; activations [\d.]+ [KM]iB per micro-batch of 2; largest tensor [\d.]+ KiB\.$/);
    expect(await page.locator('[data-testid=pretrained-too-big]').count()).toBe(0);
    expect(await page.locator('[data-testid=lab-error]').count()).toBe(0);

    const f = await figures(page);
    expect(f.config.encoder).toMatchObject({ kind: 'vit', dim: 64, heads: 4, blocks: 2, regTokens: 4, layerScale: true, mlp: 'swiglu', noEmbedClass: true, pool: 'mean', fcNorm: true, pretrained: FILE });
    hash = (await page.getAttribute('[data-testid=config-link]', 'href'))!;
    expect(hash).toContain(`encoder.pretrained=${FILE}`);
    expect(hash).toContain('encoder.heads=4');
    await page.locator('[data-testid=setup-panel]').screenshot({ path: artifactPath('pretrained-setup.png') });
    await page.locator('[data-testid=pretrained-panel]').screenshot({ path: artifactPath('pretrained-panel.png') });
  }, 60_000);

  it(`fine-tunes from the file for ${STEPS} steps on 2 WebGPU ranks: finite losses, replicas in step, weights moved a little from the file's`, async () => {
    for (let s = 1; s <= STEPS; s++) await stepOnce(page, s);
    const f = await figures(page);
    const main = page.locator('[data-testid=rank-main]').first();
    const mainBackend = { backend: await main.getAttribute('data-backend'), choice: await main.getAttribute('data-choice') };
    const run = await page.evaluate(async () => {
      const lab = (window as any).slideLab;
      const file: Float32Array = lab.pretrained.loaded.weights;
      const now: Float32Array = await lab.trainer.engine.encoderWeights();
      let moved = 0;
      for (let i = 0; i < now.length; i++) moved = Math.max(moved, Math.abs(now[i] - file[i]));
      return {
        params: now.length,
        moved,
        steps: lab.history.steps.map((s: any) => ({ wallMs: s.wallMs, replicaDrift: s.replicaDrift, tiles: s.k, lr: s.lr, forwardMs: s.perRank.map((r: any) => Math.round(r.ms.forward)), recomputeMs: s.perRank.map((r: any) => Math.round(r.ms.recompute)) })),
      };
    });
    console.log(JSON.stringify({
      fineTune: { file: FILE, params: run.params, steps: f.steps.length, slides: f.slides, losses: f.losses.map((l) => +l.toFixed(5)), stepMs: run.steps.map((s: any) => Math.round(s.wallMs)), forwardMs: run.steps.map((s: any) => s.forwardMs), recomputeMs: run.steps.map((s: any) => s.recomputeMs), lr: run.steps.map((s: any) => s.lr), maxMovedFromFile: run.moved },
      ranks: f.ranks, main: mainBackend, tilesPerSec: f.tilesPerSec,
    }, null, 1));
    expect(f.error).toBeNull();
    expect(f.steps).toEqual(Array.from({ length: STEPS }, (_, i) => i));
    for (const l of f.losses) expect(Number.isFinite(l)).toBe(true);
    expect(f.ranks.map((r) => r.backend)).toEqual(['webgpu', 'webgpu']);
    for (const r of f.ranks) expect(r.adapter).not.toBeNull();
    for (const s of run.steps) expect(s.replicaDrift).toBeLessThanOrEqual(1e-6);
    expect(run.moved).toBeGreaterThan(0); // trained away from the file's weights...
    expect(run.moved).toBeLessThan(1e-2); // ...by a few AdamW steps of lr 1e-3: the ranks started from them
    await expect.poll(() => page.locator('[data-testid=last-loss]').textContent()).toMatch(/^\d+\.\d{4}$/);
    // Still the same file and settings in the link while training.
    expect(await page.getAttribute('[data-testid=config-link]', 'href')).toBe(hash);
  }, 420_000);

  it('a bad file while a run is paused changes nothing; the encoder exports as safetensors in timm\'s names', async () => {
    const before = await labState(page);
    await pickEncoder(page, { name: 'zeros.safetensors', buffer: Buffer.alloc(100) });
    await expect.poll(() => page.locator('[data-testid=lab-error]').textContent(), { timeout: 30_000 }).toMatch(/zeros\.safetensors/);
    const after = await labState(page);
    expect([after.config, after.hash, after.loaded]).toEqual([before.config, before.hash, FILE]);
    await page.click('[data-testid=lab-error] button');

    const [out] = await downloadsOf(page, '[data-testid=export-encoder-safetensors]');
    expect(out.name).toBe(`timm-vit-x-step${STEPS}.safetensors`);
    const wf = await openWeightFile(new Blob([Uint8Array.from(out.body)]), out.name);
    const orig = await openWeightFile(new Blob([readFileSync('fixtures/pretrained/timm-vit-x.safetensors')]), 'timm-vit-x.safetensors');
    expect(wf.format).toBe('safetensors');
    expect(wf.metadata).toMatchObject({ format: 'pt', 'slide-lab.family': 'timm-vit', 'slide-lab.step': String(STEPS) });
    for (const n of TIMM_NAMES) expect(wf.tensors.has(n)).toBe(true);
    // The same tensors as the file, in the same shapes; the trained values near the file's.
    expect([...wf.tensors.keys()].sort()).toEqual([...orig.tensors.keys()].sort());
    let moved = 0;
    for (const [name, t] of orig.tensors) {
      const e = wf.tensors.get(name)!;
      expect(e.shape).toEqual(t.shape);
      const [a, b] = [await e.read(), await t.read()];
      for (let i = 0; i < a.length; i++) moved = Math.max(moved, Math.abs(a[i] - b[i]));
    }
    console.log(JSON.stringify({ exported: out.name, bytes: out.body.length, tensors: wf.tensors.size, maxDiffFromFile: moved }));
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(1e-2);
    await page.click('[data-testid=btn-stop]');
    await waitLab(page, "lab.state === 'stopped'", 30_000);
  }, 60_000);

  it('the same link in a fresh browser context asks for the file, and training refuses naming it', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    try {
      const fresh = await context.newPage();
      const freshLog = watchPage(fresh);
      await fresh.goto(labUrl(`/${hash}`));
      await waitLab(fresh, "lab.data && lab.state === 'ready'", 60_000).catch((e) => {
        throw new Error(`${e.message}\n${freshLog.join('\n')}`);
      });
      const missing = fresh.locator('[data-testid=pretrained-missing]');
      await expect.poll(() => missing.textContent()).toMatch(new RegExp(`starts from the pretrained encoder ${FILE.replace('.', '\\.')}.*choose it`));
      expect(await fresh.locator('[data-testid=pretrained-summary]').count()).toBe(0);
      const f = await figures(fresh);
      expect(f.config.encoder).toMatchObject({ kind: 'vit', heads: 4, regTokens: 4, pretrained: FILE });
      await fresh.click('[data-testid=btn-step]');
      await waitLab(fresh, 'lab.lastError', 60_000);
      const err = (await figures(fresh)).error!;
      expect(err.message).toMatch(/timm-vit-x\.pt.*load that file in Setup/);
      await expect.poll(() => fresh.locator('[data-testid=lab-error]').textContent()).toContain(FILE);
      expect((await figures(fresh)).steps).toEqual([]);
      await fresh.locator('[data-testid=setup-panel]').screenshot({ path: artifactPath('pretrained-missing.png') });
    } finally {
      await context.close();
    }
  }, 120_000);
});

// The lab end to end in headless Chromium: demo slides, 2 Web Worker ranks on WebGPU
// (SwiftShader here; a real GPU with SLIDE_LAB_GPU=1), a small preset. One page, in order:
// train with a reload in the middle (resume from the IndexedDB checkpoint), check the loss trend,
// the main context's backend, the exports (metrics CSV/JSON, weights), the timeline, the ranks'
// adapters and the attention heatmap; open a preset link and run the equivalence check; a tiny
// K sweep on one set of warm workers and its CSV; slides dropped on the drop zone and a picked
// folder; drop a corrupt file beside good ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { artifactPath, labUrl } from '../tools/chromium.ts';
import { clickSurvivingReload, csvRecords, downloadsOf, figures, mean, labBrowserHooks, paintedPixels, resumeFromBanner, waitLab } from './lab-page.ts';
import { TOLERANCE } from '../src/core/equivalence.ts';
import { PHASES } from '../src/core/report.ts';
import { attentionDim, featureDim, parseConfig } from '../src/core/config.ts';
import { encoderSpecs } from '../src/core/models/encoder.ts';
import { aggregatorSpecs } from '../src/core/models/aggregator.ts';
import { importWeights } from '../src/lab/export.ts';

// The mechanics on a small model: from-scratch (tiny CNN) on 6 demo slides (4 train, 2 val): 2
// epochs of 4 steps, K = 16 tiles of 32 px. (First look itself fine-tunes the pretrained encoder.)
const RUN = '/#preset=from-scratch&subset=6&epochs=2';
const RESUME_AFTER = 3;

let browser: Browser;
let page: Page;
labBrowserHooks((b) => ({ browser, page } = b), 40);

describe('Slide Lab in Chromium with 2 Web Worker ranks on WebGPU', () => {
  it('loads the demo slides, trains, survives a reload by resuming from its checkpoint, and the loss falls', async () => {
    await page.goto(labUrl(RUN));
    await waitLab(page, "lab.data && lab.data.name === 'demo' && lab.state === 'ready'", 60_000);
    // Vite may reload the page once after optimising dependencies it discovered late.
    await page.waitForLoadState('networkidle');
    await waitLab(page, "lab.data && lab.state === 'ready'", 60_000);
    await expect.poll(() => page.locator('[data-testid^="slide-row-"]').count()).toBe(6);
    await page.screenshot({ path: artifactPath('lab-data.png') });

    await clickSurvivingReload(page, '[data-testid=btn-start]', 'lab.history.steps.length >= 1');
    await waitLab(page, `lab.history.steps.length >= ${RESUME_AFTER} && lab.lastCheckpoint && lab.lastCheckpoint.step >= ${RESUME_AFTER}`, 240_000);
    const before = await figures(page);
    expect(before.error).toBeNull();
    expect(before.ranks.map((r) => r.backend)).toEqual(['webgpu', 'webgpu']);
    for (const r of before.ranks) expect(r.adapter).not.toBeNull();
    // The UI shows loss values as they come.
    await expect.poll(() => page.locator('[data-testid=last-loss]').textContent()).toMatch(/^\d+\.\d{4}$/);

    // Reload mid-run: the step in flight is lost, the checkpoint is offered, and training resumes there.
    await page.reload();
    const saved = await resumeFromBanner(page, { paused: 180_000, done: 300_000 });
    expect(saved).toBeGreaterThanOrEqual(RESUME_AFTER);
    const f = await figures(page);
    console.log(JSON.stringify({ resumedAt: saved, losses: f.losses.map((l) => +l.toFixed(4)), evals: f.evals, tilesPerSec: f.tilesPerSec, ranks: f.ranks }));
    expect(f.error).toBeNull();
    expect(f.steps).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // nothing lost but the step in flight, which was redone
    for (const l of f.losses) expect(Number.isFinite(l)).toBe(true);
    // Trend: the second epoch's mean training loss is below the first's (can fail: it did not for lr = 0).
    const [e0, e1] = [mean(f.losses.slice(0, 4)), mean(f.losses.slice(4, 8))];
    expect(e1).toBeLessThan(e0);
    expect(f.evals.map((e) => e.epoch)).toEqual([1, 2]);
    expect(f.tilesPerSec).toBeGreaterThan(0);
    await page.screenshot({ path: artifactPath('lab-train.png'), fullPage: true });
  }, 420_000);

  it('shows the main context\'s backend, and exports the metrics (CSV, JSON) and the weights as downloads', async () => {
    // auto: the cpu backend beside a software WebGPU adapter (SwiftShader), WebGPU on a real GPU.
    const main = page.locator('[data-testid=rank-main]').first();
    expect(await main.getAttribute('data-choice')).toBe('auto');
    expect(await main.getAttribute('data-backend')).toBe(process.env.SLIDE_LAB_GPU === '1' ? 'webgpu' : 'cpu');
    expect(await main.textContent()).toMatch(/main context \(aggregator\): (cpu|webgpu) — auto: /);

    const [csv] = await downloadsOf(page, '[data-testid=export-csv]');
    expect(csv.name).toBe('slide-lab-metrics.csv');
    const records = csvRecords(csv.body.toString('utf8'));
    const steps = records.filter((r) => r.kind === 'step');
    expect(steps.map((r) => Number(r.step))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const r of steps) {
      expect(Number(r.k)).toBe(16);
      expect(Number.isFinite(Number(r.loss)) && r.loss !== '').toBe(true);
      expect(Number(r.main_aggregator_ms)).toBeGreaterThan(0);
    }
    expect(records.filter((r) => r.kind === 'eval').map((r) => Number(r.epoch))).toEqual([1, 2]);

    const [json] = await downloadsOf(page, '[data-testid=export-json]');
    const m = JSON.parse(json.body.toString('utf8'));
    expect(m).toMatchObject({ kind: 'slide-lab-metrics', version: 1, config: { tiles: 16, ranks: 2 } });
    expect(m.steps.map((st: { loss: number }) => st.loss)).toEqual(steps.map((r) => Number(r.loss)));
    expect(m.evals).toHaveLength(2);
    expect(m.summary.steps).toBe(8);
    expect(m.ranks.map((r: { backend: string }) => r.backend)).toEqual(['webgpu', 'webgpu']);

    // Weights: model.json (tfjs weights manifest) + weights.bin, which import back into this model.
    const files = await downloadsOf(page, '[data-testid=export-weights]', 2);
    const byName = Object.fromEntries(files.map((f) => [f.name, f.body]));
    expect(Object.keys(byName).sort()).toEqual(['model.json', 'weights.bin']);
    const cfg = parseConfig((await figures(page)).config);
    const encSpecs = encoderSpecs(cfg.encoder, cfg.tileSize);
    const aggSpecs = aggregatorSpecs(featureDim(cfg.encoder), attentionDim(cfg.aggregator));
    const model = JSON.parse(byName['model.json'].toString('utf8'));
    expect(model.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(model.userDefinedMetadata.step).toBe(8);
    const bin = byName['weights.bin'];
    const w = importWeights(byName['model.json'].toString('utf8'), Uint8Array.from(bin).buffer, encSpecs, aggSpecs);
    const live = await page.evaluate(async () => Array.from(await (window as any).slideLab.trainer.engine.encoderWeights() as Float32Array));
    expect(Array.from(w.encoder)).toEqual(live);
    expect(w.aggregator.some((x) => x !== 0)).toBe(true);
  }, 60_000);

  it('the timeline shows every phase for main and both ranks, with shapes and bytes on the arrows', async () => {
    const segs = await page.locator('[data-testid^=seg-]').evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')));
    for (const rank of [0, 1]) for (const phase of ['decode', 'forward', 'recompute', 'optimizer']) expect(segs).toContain(`seg-${rank}-${phase}`);
    for (const phase of ['gather', 'aggregator', 'scatter', 'reduce', 'optimizer']) expect(segs).toContain(`seg-main-${phase}`);
    expect(new Set(segs.map((s) => s!.split('-')[2]))).toEqual(new Set(PHASES));
    const arrows = await page.locator('[data-testid^=arrow-]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-testid')} ${e.textContent}`));
    expect(arrows).toContain('arrow-gather-0-main gather [8, 32] f32 · 1.0 KiB');
    expect(arrows).toContain('arrow-scatter-main-1 scatter [8, 32] f32 · 1.0 KiB');
    expect(arrows.some((a) => a.startsWith('arrow-reduce-1-main reduce [P='))).toBe(true);
    await page.locator('[data-testid=timeline-panel]').screenshot({ path: artifactPath('lab-timeline.png') });
  });

  it('renders the attention heatmap of a validation slide and its top tiles', async () => {
    await page.waitForSelector('[data-testid=heatmap][data-has-image="1"]', { timeout: 60_000 });
    expect(await paintedPixels(page, 'heatmap')).toBeGreaterThan(1000);
    await expect.poll(() => page.locator('[data-testid=gallery-tile]').count()).toBeGreaterThan(3);
    // The attention score: the one positive validation slide has planted lesions; an AUC when its
    // sampled validation tiles include one (evalTiles=32 of 39), else the panel says why there is none.
    const score = (await page.locator('[data-testid=attention-score]').textContent()) ?? '';
    expect(score).toMatch(/^Attention score on 1 positive validation slide with known lesions: AUC \d\.\d{3} .*precision@5 \d\.\d{2}|^No attention score/);
    await page.locator('[data-testid=attention-panel]').screenshot({ path: artifactPath('lab-attention.png') });
    // The zoomable viewer (OpenSeadragon over the slide reader) with the tissue-tile overlay.
    await page.click('[data-testid=slide-row-demo-000] button');
    await page.waitForSelector('[data-testid=slide-viewer][data-status=ready]', { timeout: 30_000 });
    await expect.poll(() => page.locator('[data-testid=slide-viewer]').getAttribute('data-tiles').then(Number), { timeout: 30_000 }).toBeGreaterThan(0);
    // demo-000 has 89 tissue tiles; as a validation slide it also carries its attention overlay.
    await expect.poll(() => page.locator('[data-testid=slide-viewer] .osd-overlay').count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(34);
    // The pixel-level tissue mask: detected in the page, painted where tissue is and only there.
    await page.waitForSelector('[data-testid=slide-viewer][data-mask=shown]', { timeout: 60_000 });
    const mask = await page.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>('[data-testid=slide-viewer] canvas.osd-mask')!;
      const a = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let on = 0;
      for (let i = 3; i < a.length; i += 4) if (a[i] > 0) on++;
      return { on, total: c.width * c.height };
    });
    expect(mask.on / mask.total).toBeGreaterThan(0.05);
    expect(mask.on / mask.total).toBeLessThan(0.95);
    await page.locator('[data-testid=viewer]').screenshot({ path: artifactPath('lab-viewer.png') });
  });

  it('a preset link restores its configuration, and the equivalence panel reports figures under tolerance', async () => {
    await page.click('[data-testid=preset-equivalence]');
    await waitLab(page, "lab.data && lab.data.name === 'synthetic' && lab.state === 'ready'", 30_000);
    const f = await figures(page);
    expect(f.config).toMatchObject({ tiles: 6, tileSize: 16, microBatch: 2, ranks: 2, encoder: { kind: 'tiny-cnn', width: 4 } });
    expect(await page.inputValue('[data-testid="cfg-tiles"]')).toBe('6');
    expect(await page.inputValue('[data-testid="cfg-tileSize"]')).toBe('16');
    expect(page.url()).toContain('tiles=6');
    await clickSurvivingReload(page, '[data-testid=run-equivalence]', 'lab.equivalenceRows.length >= 1');
    await page.waitForSelector('[data-testid=eq-status]', { timeout: 240_000 });
    const status = page.locator('[data-testid=eq-status]');
    const max = Number(await page.locator('[data-testid=eq-max]').getAttribute('data-value'));
    console.log(JSON.stringify({ equivalenceMax: max, text: await status.textContent() }));
    expect(await status.getAttribute('data-pass')).toBe('true');
    expect(await page.locator('[data-testid=eq-row]').count()).toBe(3);
    expect(max).toBeLessThan(TOLERANCE.grad);
    await page.locator('[data-testid=equivalence-panel]').screenshot({ path: artifactPath('lab-equivalence.png') });
  }, 300_000);

  it('a tiny K sweep runs both values on one set of warm workers, fills its chart and table, and exports its CSV', async () => {
    // The equivalence preset's tiny model on synthetic slides; K = 2 and 4, 2 steps each.
    await page.evaluate(() => (location.hash = '#preset=equivalence&sweep=2,4&expSteps=2&panel=experiments'));
    await waitLab(page, "lab.options.sweep.join(',') === '2,4' && lab.options.expSteps === 2 && lab.data && lab.state === 'ready'", 30_000);
    await clickSurvivingReload(page, '[data-testid=run-ksweep]', "lab.state === 'busy' || lab.experimentRows.length > 0");
    await waitLab(page, "lab.state === 'ready' && (lab.experimentRows.length === 2 || lab.lastError)", 300_000);
    const rows = await page.evaluate(() => (window as any).slideLab.experimentRows.map((r: any) => ({ k: r.k, steps: r.steps, losses: r.losses, reused: r.reusedRanks, wallMs: r.wallMs })));
    console.log(JSON.stringify({ ksweep: rows }));
    expect((await figures(page)).error).toBeNull();
    expect(rows.map((r: { k: number; steps: number; reused: boolean }) => [r.k, r.steps, r.reused])).toEqual([[2, 2, false], [4, 2, true]]);
    for (const r of rows) for (const l of r.losses) expect(Number.isFinite(l)).toBe(true);
    expect(await page.locator('[data-testid=ksweep-table] [data-testid=exp-row]').count()).toBe(2);
    expect(await page.locator('[data-testid=chart-ksweep]').getAttribute('data-points')).toBe('2');
    expect(await page.locator('[data-testid=chart-ksweep] canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid=exp-status]').textContent()).toBe('finished');

    const [csv] = await downloadsOf(page, '[data-testid=export-k-sweep-csv]');
    expect(csv.name).toBe('k-sweep.csv');
    const records = csvRecords(csv.body.toString('utf8'));
    expect(records.map((r) => [r.experiment, r.variant, r.k, r.steps, r.reused_ranks])).toEqual([['k-sweep', 'K=2', '2', '2', 'false'], ['k-sweep', 'K=4', '4', '2', 'true']]);
    for (const r of records) expect(Number(r.final_train_loss)).toBeCloseTo(mean(rows.find((x: { k: number }) => x.k === Number(r.k)).losses), 6);
    await page.locator('[data-testid=experiments-panel]').screenshot({ path: artifactPath('lab-ksweep.png') });
  }, 360_000);

  it('slides dragged onto the drop zone, and a picked folder, load with their manifest', async () => {
    // A real drag and drop: dragenter, dragover, drop on the zone with a DataTransfer built in the page.
    const csv = 'slide,label,split\ndemo-000,0,train\ndemo-001,1,val\n';
    const files = [
      { name: 'labels.csv', type: 'text/csv', b64: Buffer.from(csv).toString('base64') },
      { name: 'demo-000.tiff', type: 'image/tiff', b64: readFileSync('public/demo/demo-000.tiff').toString('base64') },
      { name: 'demo-001.tiff', type: 'image/tiff', b64: readFileSync('public/demo/demo-001.tiff').toString('base64') },
    ];
    const dt = await page.evaluateHandle((fs) => {
      const dt = new DataTransfer();
      for (const f of fs) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
      return dt;
    }, files);
    const zone = '[data-testid=dropzone]';
    await page.dispatchEvent(zone, 'dragenter', { dataTransfer: dt });
    await page.dispatchEvent(zone, 'dragover', { dataTransfer: dt });
    await expect.poll(() => page.getAttribute(zone, 'data-over')).toBe('1');
    await page.dispatchEvent(zone, 'drop', { dataTransfer: dt });
    await waitLab(page, "lab.data && lab.data.source.kind === 'files' && lab.state === 'ready'", 60_000);
    expect(await page.getAttribute(zone, 'data-over')).toBe('0');
    const dropped = await page.evaluate(() => (window as any).slideLab.data.slides.map((s: any) => ({ id: s.id, tiles: s.tissueTiles, error: s.error ?? null, split: s.split })));
    expect(dropped.map((s: { id: string }) => s.id)).toEqual(['demo-000', 'demo-001']);
    for (const s of dropped) {
      expect(s.error).toBeNull();
      expect(s.tiles).toBeGreaterThan(10);
    }
    await expect.poll(() => page.locator('[data-testid^="slide-row-"]').count()).toBe(2);
    expect(await page.locator('[data-testid=slide-table] [data-testid=slide-error]').count()).toBe(0);

    // A folder (input with webkitdirectory): the files arrive with their folder path.
    const dir = mkdtempSync(join(tmpdir(), 'slide-lab-folder-'));
    try {
      writeFileSync(join(dir, 'manifest.csv'), 'slide,label,split\ndemo-002,0,train\ndemo-003,1,val\n');
      for (const id of ['demo-002', 'demo-003']) writeFileSync(join(dir, `${id}.tiff`), readFileSync(`public/demo/${id}.tiff`));
      await page.setInputFiles('[data-testid=folder-input]', dir);
      await waitLab(page, "lab.data && lab.data.slides.some((s) => s.id === 'demo-003') && lab.state === 'ready'", 60_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const picked = await page.evaluate(() => {
      const d = (window as any).slideLab.data;
      return { names: d.source.names, slides: d.slides.map((s: any) => ({ id: s.id, error: s.error ?? null })) };
    });
    expect(picked.slides).toEqual([{ id: 'demo-002', error: null }, { id: 'demo-003', error: null }]);
    for (const n of picked.names) expect(n).toMatch(/^slide-lab-folder-[^/]+\/(manifest\.csv|demo-00[23]\.tiff)$/);
    await expect.poll(() => page.locator('[data-testid^="slide-row-"]').count()).toBe(2);
  }, 180_000);

  it('a corrupt file dropped beside good slides shows its error while the rest trains; teaching mode explains each phase', async () => {
    const csv = 'slide,label,split\ndemo-000,0,train\ndemo-001,1,train\nbroken,1,val\n';
    await page.setInputFiles('[data-testid=file-input]', [
      { name: 'labels.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) },
      { name: 'demo-000.tiff', mimeType: 'image/tiff', buffer: readFileSync('public/demo/demo-000.tiff') },
      { name: 'demo-001.tiff', mimeType: 'image/tiff', buffer: readFileSync('public/demo/demo-001.tiff') },
      { name: 'broken.tiff', mimeType: 'image/tiff', buffer: Buffer.concat([readFileSync('public/demo/demo-002.tiff').subarray(0, 300), Buffer.alloc(64)]) },
    ]);
    await waitLab(page, "lab.data && lab.data.source.kind === 'files' && lab.state === 'ready'", 60_000);
    const err = page.locator('[data-testid=slide-row-broken] [data-testid=slide-error]');
    await expect.poll(() => err.textContent()).toMatch(/corrupt|truncated|not a TIFF/);
    expect(await page.locator('[data-testid=slide-row-demo-000] [data-testid=slide-error]').count()).toBe(0);
    await page.locator('[data-testid=data-panel]').screenshot({ path: artifactPath('lab-dropped.png') });
    await clickSurvivingReload(page, '[data-testid=btn-step]', "lab.state === 'paused' && lab.history.steps.length === 1", 180_000);
    const f = await figures(page);
    expect(f.error).toBeNull();
    expect(['demo-000', 'demo-001']).toContain(f.slides[0]);
    expect(Number.isFinite(f.losses[0])).toBe(true);
    // Teaching mode: the next step pauses after every phase until "Next phase", with its explanation.
    await page.check('[data-testid=teaching-toggle]');
    await page.click('[data-testid=btn-step]');
    const taught = new Set<string>();
    const t0 = Date.now();
    while (!(await page.evaluate(() => (window as any).slideLab.history.steps.length === 2 && (window as any).slideLab.state === 'paused'))) {
      if (Date.now() - t0 > 120_000) throw new Error(`teaching step did not finish; phases seen: ${[...taught]}`);
      if (await page.locator('[data-testid=teach-next]').count()) {
        // Click once per phase: the panel may still show the last phase for a moment after a click.
        const phase = await page.locator('[data-testid=teach-text]').getAttribute('data-phase').catch(() => null);
        if (phase && !taught.has(phase)) {
          taught.add(phase);
          expect(await page.locator('[data-testid=teach-text]').textContent()).toMatch(new RegExp(`${phase}.*: \\w+`));
          await page.click('[data-testid=teach-next]', { timeout: 2000 }).catch(() => undefined);
        }
      }
      await page.waitForTimeout(100);
    }
    expect(taught).toEqual(new Set(['forward', 'gather', 'aggregator', 'scatter', 'recompute', 'reduce', 'optimizer']));
    await page.uncheck('[data-testid=teaching-toggle]');
    await page.click('[data-testid=btn-stop]');
    await waitLab(page, "lab.state === 'stopped'", 30_000);
  }, 300_000);
});

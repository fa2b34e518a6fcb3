import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { tf } from '../core/tf.ts';
import { ConfigError, DEFAULT_CONFIG } from '../core/config.ts';
import { PHASES } from '../core/report.ts';
import { LabSession } from './session.ts';
import { MemoryCheckpointStore } from './checkpoints.ts';
import { testDeps, until } from './testing/session-deps.ts';
import { labHash, parseLabHash, PRESETS, settingsFromArgument } from './presets.ts';
import { buildTimeline, phasesIn } from './timeline.ts';
import { importWeights } from './export.ts';
import { encoderSpecs } from '../core/models/encoder.ts';
import { loadDroppedFiles, matchFile } from './files.ts';
import { stratifiedSubset } from './dataset.ts';

const HASH = 'data=synthetic&encoder.width=4&tileSize=16&tiles=6&microBatch=3&ranks=2&epochs=2&optimizer.lr=0.003&optimizer.minLr=0.00003&augment.blur=0&backend=cpu&subset=8';

const deps = testDeps;

describe('presets and the lab hash', () => {
  it('every preset parses, and a hash round-trips', () => {
    for (const p of PRESETS) {
      const s = parseLabHash(`#preset=${p.name}`);
      expect(s.preset).toBe(p.name);
      const again = parseLabHash(labHash(s));
      expect(again.config).toEqual(s.config);
      expect(again.lab).toEqual(s.lab);
    }
  });
  it('later keys override the preset', () => {
    const s = parseLabHash('#preset=first-look&tiles=32&data=synthetic');
    expect(s.config.tiles).toBe(32);
    expect(s.lab.data).toBe('synthetic');
    expect(s.config.tileSize).toBe(32);
    expect(settingsFromArgument('equivalence').lab.panel).toBe('equivalence');
  });
  it('bad values name their field', () => {
    expect(() => parseLabHash('#tiles=0')).toThrow(/tiles/);
    expect(() => parseLabHash('#preset=nope')).toThrow(ConfigError);
    expect(() => parseLabHash('#sweep=4,x')).toThrow(/sweep/);
    expect(() => parseLabHash('#bogus=1')).toThrow(/bogus: unknown setting/);
    expect(parseLabHash('').config).toEqual(DEFAULT_CONFIG);
    expect(() => parseLabHash('#mainBackend=gpu')).toThrow(/mainBackend: must be auto, webgpu, cpu/);
  });
  it('the main context backend is a lab setting: old links parse as auto, a choice round-trips', () => {
    expect(parseLabHash('#preset=first-look&tiles=32').lab.mainBackend).toBe('auto');
    const s = parseLabHash('#preset=first-look&mainBackend=cpu');
    expect(s.lab.mainBackend).toBe('cpu');
    expect(labHash(s)).toContain('mainBackend=cpu');
    expect(parseLabHash(labHash(s)).lab).toEqual(s.lab);
    expect(labHash(parseLabHash('#tiles=8'))).not.toContain('mainBackend');
  });
  it('stratified subsets keep both labels in both splits', () => {
    const items = Array.from({ length: 32 }, (_, i) => ({ label: i % 2, split: i < 24 ? 'train' : 'val' }));
    const sub = stratifiedSubset(items, 8);
    expect(sub.length).toBe(8);
    for (const split of ['train', 'val']) for (const label of [0, 1]) expect(sub.some((s) => s.split === split && s.label === label)).toBe(true);
  });
});

describe('LabSession (in-process ranks, cpu backend, synthetic slides)', () => {
  it('trains to the end, evaluates each epoch, records reports, saves checkpoints and resumes from one', async () => {
    const store = new MemoryCheckpointStore();
    const lab = new LabSession(deps({ store }), HASH);
    await lab.loadDefaultData();
    expect(lab.data!.entries.length).toBe(8);
    const steps: number[] = [];
    const evals: number[] = [];
    lab.on('step', (s) => steps.push(s.loss));
    lab.on('eval', (e) => evals.push(e.auc));
    await lab.start();
    await until(() => lab.state === 'done' || lab.state === 'error');
    expect(lab.lastError).toBeNull();
    const spe = lab.trainer!.engine.sampler.stepsPerEpoch;
    expect(steps).toHaveLength(2 * spe);
    expect(evals).toHaveLength(2);
    for (const l of steps) expect(Number.isFinite(l)).toBe(true);
    const p = lab.trainer!.progress();
    expect(p.step).toBe(p.total);
    expect(p.tilesPerSec).toBeGreaterThan(0);
    const m = lab.metricsJson();
    expect(m.steps).toHaveLength(steps.length);
    expect(m.evals[1].auc).toBeGreaterThanOrEqual(0);
    expect(lab.metricsCsv().split('\n')[0]).toMatch(/^kind,step,epoch,slide/);
    // The timeline of an end-to-end step shows every phase, for main and both ranks.
    const tl = buildTimeline(lab.history.steps[1], lab.rankInfo[0].params);
    expect([...phasesIn(tl)].sort()).toEqual([...PHASES].sort());
    expect(tl.lanes).toEqual(['main', 0, 1]);
    expect(tl.arrows.filter((a) => a.phase === 'gather').map((a) => a.bytes).reduce((a, b) => a + b)).toBe(6 * lab.history.steps[1].d * 4);
    // Weights export/import round-trip.
    const w = await lab.exportWeights();
    const back = importWeights(w.modelJson, w.weightsBin, encoderSpecs(lab.config.encoder, lab.config.tileSize), lab.trainer!.engine.aggSpecs);
    expect(Array.from(back.encoder)).toEqual(Array.from(await lab.trainer!.engine.encoderWeights()));
    expect(() => importWeights(w.modelJson, w.weightsBin.slice(8), encoderSpecs(lab.config.encoder, lab.config.tileSize), lab.trainer!.engine.aggSpecs)).toThrow(/bytes/);
    // Without a live run, the export comes from the latest checkpoint: the same files.
    const fromCheckpoint = await new LabSession(deps({ store })).exportWeights();
    expect(new Uint8Array(fromCheckpoint.weightsBin)).toEqual(new Uint8Array(w.weightsBin));
    expect(JSON.parse(fromCheckpoint.modelJson).weightsManifest).toEqual(JSON.parse(w.modelJson).weightsManifest);

    // Checkpoint at the end; a new session restores it with the same weights and step.
    const c = await store.load();
    expect(c!.step).toBe(2 * spe);
    expect(c!.optimizer!.aggregator.t).toBe(2 * spe); // AdamW moments travel with the checkpoint
    const enc = await lab.trainer!.engine.encoderWeights();
    const lab2 = new LabSession(deps({ store }));
    expect(await lab2.restore(c!)).toBe(true);
    await until(() => lab2.state === 'done');
    expect(lab2.trainer!.engine.step).toBe(2 * spe);
    expect(lab2.history.steps).toHaveLength(2 * spe);
    expect(Array.from(await lab2.trainer!.engine.encoderWeights())).toEqual(Array.from(enc));
    expect((await lab2.trainer!.engine.optimizerState()).aggregator.m).toEqual(c!.optimizer!.aggregator.m);
    expect(lab2.config).toEqual(lab.config);
  }, 120_000);

  it('pauses, single-steps, resumes after a reload-like restore mid-run, and stops', async () => {
    const store = new MemoryCheckpointStore();
    const lab = new LabSession(deps({ store }), HASH);
    await lab.loadDefaultData();
    await lab.step();
    await until(() => lab.state === 'paused');
    expect(lab.history.steps).toHaveLength(1);
    await lab.step();
    await until(() => lab.history.steps.length === 2 && lab.state === 'paused');
    expect((await store.load())!.step).toBe(2);
    // "Reload": a fresh session resumes at step 2 and goes on from there.
    const lab2 = new LabSession(deps({ store }));
    await lab2.restore((await store.load())!);
    await until(() => lab2.state === 'paused');
    const seen: number[] = [];
    let stopping: Promise<void> | null = null;
    lab2.on('step', (s) => {
      seen.push(s.step);
      if (seen.length === 2) stopping = lab2.stop(); // in-process cpu ranks never yield to timers mid-run
    });
    lab2.resume();
    await until(() => stopping !== null);
    expect(seen[0]).toBe(2);
    // Same slide plan as an uninterrupted run.
    expect(lab2.history.steps[2].slideId).toBe(lab.trainer!.engine.sampler.plan(2).slide.id);
    await stopping;
    await until(() => lab2.state === 'stopped');
    expect(seen).toEqual([2, 3]);
    expect(lab2.trainer).toBeNull();
    lab.pause();
    await lab.stop();
  }, 120_000);

  it('teaching mode pauses after every phase until told to go on', async () => {
    const lab = new LabSession(deps(), HASH);
    await lab.loadDefaultData();
    lab.setTeaching(true);
    const waits: string[] = [];
    lab.on('phase', (e) => {
      if (e.waiting) {
        waits.push(e.phase);
        setTimeout(() => lab.continuePhase(), 1);
      }
    });
    await lab.step();
    await until(() => lab.state === 'paused' && lab.history.steps.length === 1);
    expect(new Set(waits)).toEqual(new Set(['forward', 'gather', 'aggregator', 'scatter', 'recompute', 'reduce', 'optimizer']));
    await lab.stop();
  }, 60_000);

  it('a failing rank reports which rank and step, and the session stays usable', async () => {
    let calls = 0;
    const lab = new LabSession(
      deps({}, (ranks) => ranks.map((r, i) => (i === 1 ? new Proxy(r, {
        get: (t, k) => {
          if (k === 'encode') return (x: never) => (++calls === 2 ? Promise.reject(new Error('device lost')) : t.encode(x));
          const v = (t as unknown as Record<string | symbol, unknown>)[k];
          return typeof v === 'function' ? v.bind(t) : v;
        },
      }) : r))),
      HASH,
    );
    await lab.loadDefaultData();
    await lab.start();
    await until(() => lab.state === 'error');
    expect(lab.lastError!.where).toMatch(/^rank 1, encode \(step 1, slide synthetic-\d+\)$/);
    expect(lab.lastError!.message).toBe('device lost');
    expect(lab.history.steps).toHaveLength(1);
    expect(lab.trainer).toBeNull();
  }, 60_000);

  it('sets up the main context from the ranks\' backend and the mainBackend setting, again when it changes', async () => {
    const calls: string[] = [];
    const lab = new LabSession(deps({ setupMain: async (ranks, main) => {
      calls.push(`${ranks}|${main}`);
      await tf.setBackend('cpu');
      return { backend: 'cpu', adapter: null, why: `test: ${main}` };
    } }), `${HASH}&mainBackend=cpu`);
    await lab.loadDefaultData();
    await lab.step();
    await until(() => lab.state === 'paused');
    expect(lab.mainBackend).toMatchObject({ backend: 'cpu', choice: 'cpu', why: 'test: cpu' });
    await lab.stop();
    lab.setSettings(lab.config, { ...lab.options, mainBackend: 'auto' });
    await lab.step();
    await until(() => lab.state === 'paused');
    expect(lab.mainBackend).toMatchObject({ choice: 'auto', why: 'test: auto' });
    expect(calls).toEqual(['cpu|cpu', 'cpu|auto']);
    await lab.stop();
  }, 60_000);

  it('stop while the ranks are still starting ends them at once', async () => {
    let terminated = 0;
    let inits = 0;
    const hangs = () => ((inits += 1), new Promise<never>(() => undefined)); // a worker that never finishes starting
    const lab = new LabSession(deps({}, (ranks) => ranks.map((r) => Object.assign(r, { init: hangs, terminate: () => void (terminated += 1) }))), HASH);
    await lab.loadDefaultData();
    await lab.start();
    await until(() => inits === 2);
    expect(lab.state).toBe('starting');
    await lab.stop();
    await until(() => lab.state === 'stopped', 2000);
    expect(terminated).toBe(2);
    expect(lab.trainer).toBeNull();
    expect(lab.lastError).toBeNull();
  }, 30_000);

  it('runs the equivalence check and both experiments', async () => {
    const lab = new LabSession(deps(), `${HASH}&sweep=2,6&expSteps=3`);
    await lab.loadDefaultData();
    const rows = await lab.runEquivalence(2);
    expect(rows).toHaveLength(2);
    for (const r of rows!) expect(r.pass).toBe(true);
    const sweep = await lab.runExperiment('k-sweep');
    expect(sweep!.map((r) => [r.k, r.steps])).toEqual([[2, 3], [6, 3]]);
    const fe = await lab.runExperiment('frozen-vs-e2e');
    expect(fe!.map((r) => r.frozenEncoder)).toEqual([true, false]);
    for (const r of [...sweep!, ...fe!]) expect(Number.isFinite(r.finalTrainLoss)).toBe(true);
    expect(lab.state).toBe('ready');
  }, 120_000);
});

describe('dropped files', () => {
  it('matches files to manifest rows, reports a corrupt file and an unlisted one, keeps the rest', async () => {
    expect(matchFile({ slide: 'a', path: 'dir/x.svs' }, [{ name: 'x.svs', blob: new Blob([]) }])?.name).toBe('x.svs');
    expect(matchFile({ slide: 'a' }, [{ name: 'a.tiff', blob: new Blob([]) }])?.name).toBe('a.tiff');
    const good = readFileSync('public/demo/demo-000.tiff');
    const csv = 'slide,label,split\ndemo-000,0,train\nbroken,1,val\nmissing,1,train\n';
    const data = await loadDroppedFiles(
      [
        { name: 'labels.csv', blob: new Blob([csv]) },
        { name: 'demo-000.tiff', blob: new Blob([good]) },
        { name: 'broken.tiff', blob: new Blob([new Uint8Array([0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 2, 3])]) },
        { name: 'extra.svs', blob: new Blob([new Uint8Array(10)]) },
      ],
      { makeUrl: () => 'blob:test' },
    );
    const byId = new Map(data.slides.map((s) => [s.id, s]));
    expect(byId.get('demo-000')!.error).toBeUndefined();
    expect(byId.get('demo-000')!.tissueTiles).toBeGreaterThan(10);
    expect(byId.get('broken')!.error).toMatch(/corrupt|truncated/);
    expect(byId.get('missing')!.error).toMatch(/no dropped file/);
    expect(byId.get('extra')!.error).toMatch(/not in the manifest/);
    expect(data.entries.map((e) => e.id)).toEqual(['demo-000']);
    expect(data.tileSpec.kind === 'slides' && data.tileSpec.slides[0].grid.tiles.length).toBe(byId.get('demo-000')!.tissueTiles);
  }, 60_000);

  it('reads annotation files dropped with the slides into lesion tiles (the attention score\'s ground truth)', async () => {
    const good = new Blob([readFileSync('public/demo/demo-000.tiff')]);
    const plain = await loadDroppedFiles([{ name: 'labels.csv', blob: new Blob(['slide,label,split\ndemo-000,1,val\n']) }, { name: 'demo-000.tiff', blob: good }], { makeUrl: () => 'blob:test' });
    const rects = plain.slides[0].grid!.rects;
    expect(plain.slides[0].lesionTiles).toBeUndefined();
    // A box over exactly the tissue tiles 0 and 2, as a QuPath-style GeoJSON polygon and as a CSV.
    const box = (t: number) => rects.slice(t * 4, t * 4 + 4);
    const [a, b] = [box(0), box(2)];
    const ring = (r: number[]) => [[r[0], r[1]], [r[0] + r[2], r[1]], [r[0] + r[2], r[1] + r[3]], [r[0], r[1] + r[3]], [r[0], r[1]]];
    const geo = JSON.stringify({ type: 'FeatureCollection', features: [a, b].map((r) => ({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [ring(r)] }, properties: { classification: { name: 'Tumor' } } })) });
    for (const file of [{ name: 'demo-000.geojson', blob: new Blob([geo]) }, { name: 'boxes.csv', blob: new Blob([`slide,x,y,w,h\ndemo-000,${a.join(',')}\ndemo-000,${b.join(',')}\n`]) }]) {
      const data = await loadDroppedFiles([{ name: 'labels.csv', blob: new Blob(['slide,label,split\ndemo-000,1,val\n']) }, { name: 'demo-000.tiff', blob: good }, file], { makeUrl: () => 'blob:test' });
      expect(data.issues).toEqual([]);
      expect(data.slides.map((s) => s.id)).toEqual(['demo-000']);
      expect(data.slides[0].lesionTiles?.slice(0, 2)).toEqual([0, 2]);
    }
    const bad = await loadDroppedFiles([{ name: 'labels.csv', blob: new Blob(['slide,label,split\ndemo-000,1,val\n']) }, { name: 'demo-000.tiff', blob: good }, { name: 'demo-000.geojson', blob: new Blob(['{']) }], { makeUrl: () => 'blob:test' });
    expect(bad.issues.join('\n')).toMatch(/demo-000\.geojson: not JSON/);
    expect(bad.entries.map((e) => e.id)).toEqual(['demo-000']);
  }, 60_000);
});

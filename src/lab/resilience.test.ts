// Faults a run survives (issue #11), in Node with in-process ranks on the cpu backend:
// - a training slide whose file disappears after the run started is set aside with its reason,
//   the step goes on with the next slide, the replicas stay equal and a checkpoint remembers it;
// - a pause clicked while the ranks encode cuts the step (redone on resume) and a stop cuts the
//   run: the weights after resuming equal an uninterrupted run's, and a stopped run's checkpoint
//   holds exactly the weights of the steps it counts.
import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sampler } from '../core/sampler.ts';
import type { TileSourceSpec } from '../core/tiles.ts';
import { syntheticOnly, inProcessRanks } from '../transport/in-process.ts';
import { SlideFileTiles } from '../runtime/slide-tiles.ts';
import { fromPath } from '../slide/node-open.ts';
import { createJsDecoder } from '../slide/decode-js.ts';
import type { DemoIndex } from '../slide/demo-index.ts';
import { LabSession, type SessionDeps } from './session.ts';
import { MemoryCheckpointStore } from './checkpoints.ts';
import { testDeps, until } from './testing/session-deps.ts';
import { entriesOf, type DataSet, type SlideInfo } from './dataset.ts';

const DEMO = new URL('../../public/demo/', import.meta.url).pathname;

function deps(store = new MemoryCheckpointStore()): SessionDeps {
  const tiles = (spec: TileSourceSpec) => (spec.kind === 'slides' ? new SlideFileTiles(spec.slides, { decoder: createJsDecoder(), openPath: (p, decoder) => fromPath(p, { decoder }) }) : syntheticOnly(spec));
  return testDeps({ makeRanks: (n) => inProcessRanks(n, tiles), store, referenceTiles: tiles });
}

/** Six demo slides (4 train, 2 val, both labels in each) copied to a fresh folder, as a data set of Node paths. */
function demoCopy(dir: string): DataSet {
  const index = JSON.parse(readFileSync(join(DEMO, 'demo.json'), 'utf8')) as DemoIndex;
  const pick = (split: string, label: number, n: number) => index.slides.filter((s) => s.split === split && s.label === label).slice(0, n);
  const chosen = [...pick('train', 0, 2), ...pick('train', 1, 2), ...pick('val', 0, 1), ...pick('val', 1, 1)];
  for (const s of chosen) copyFileSync(join(DEMO, s.path), join(dir, s.path));
  const slides: SlideInfo[] = chosen.map((s) => ({ id: s.slide, label: s.label, split: s.split, tissueTiles: s.grid.tiles.length, url: join(dir, s.path) }));
  return {
    name: 'demo copy',
    source: { kind: 'files', names: chosen.map((s) => s.path) }, // a restore keeps the loaded files
    slides,
    entries: entriesOf(slides),
    tileSpec: { kind: 'slides', slides: chosen.map((s) => ({ id: s.slide, source: join(dir, s.path), grid: s.grid })) },
    issues: [],
  };
}

const FILES = 'encoder.width=4&tileSize=16&tiles=4&microBatch=2&ranks=2&epochs=2&backend=cpu&augment.blur=0&evalTiles=4&optimizer.lr=0.003';

describe('a slide that fails in the middle of training', () => {
  it('is set aside with its reason; the step trains the next slide, nothing trained is lost, replicas stay equal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slide-lab-gone-'));
    try {
      const store = new MemoryCheckpointStore();
      const lab = new LabSession(deps(store), FILES);
      const data = demoCopy(dir);
      lab.data = data;
      const cfg = lab.config;
      // The slide of step 2 in the first epoch: read for the first time after step 0 (the prefetch during step 1).
      const plans = new Sampler(data.entries, cfg.seed, cfg.tiles);
      const victim = plans.plan(2).slide.id;
      expect([plans.plan(0).slide.id, plans.plan(1).slide.id]).not.toContain(victim);
      const path = data.slides.find((s) => s.id === victim)!.url!;
      lab.on('step', (s) => {
        if (s.step === 0) unlinkSync(path); // the file goes away while the run goes on
      });
      await lab.start();
      await until(() => lab.state === 'done' || lab.state === 'error', 120_000);
      expect(lab.lastError).toBeNull();
      expect(lab.state).toBe('done');
      const spe = plans.stepsPerEpoch;
      // Every step ran (nothing lost); step 2 trained the next slide of the epoch's order instead.
      expect(lab.history.steps.map((s) => s.step)).toEqual(Array.from({ length: 2 * spe }, (_, i) => i));
      expect(lab.history.steps.filter((s) => s.step >= 2).map((s) => s.slideId)).not.toContain(victim);
      expect(lab.history.steps[2].slideId).toBe(plans.plan(3).slide.id);
      // Listed with the reason, which names the file.
      const row = lab.data!.slides.find((s) => s.id === victim)!;
      expect(row.error).toMatch(/^set aside at step 2: .*no such file/);
      expect(row.error).toContain(path);
      // The replicas are equal, weight for weight.
      const [w0, w1] = await Promise.all(lab.trainer!.ranks.map((r) => r.getWeights()));
      expect(Array.from(w1)).toEqual(Array.from(w0));
      for (const s of lab.history.steps) expect(s.replicaDrift).toBeLessThanOrEqual(1e-6);
      // The checkpoint remembers it, and a resumed run skips it too.
      const c = (await store.load())!;
      expect(c.setAside).toEqual([{ id: victim, step: 2, reason: expect.stringContaining('no such file') }]);
      const lab2 = new LabSession(deps(store), FILES);
      lab2.data = demoCopy(mkdtempSync(join(dir, 'again-')));
      expect(await lab2.restore({ ...c, step: 2, steps: c.steps.slice(0, 2), evals: [] })).toBe(true);
      await until(() => lab2.state === 'paused');
      expect(lab2.trainer!.engine.sampler.plan(2).slide.id).toBe(plans.plan(3).slide.id);
      expect(lab2.data!.slides.find((s) => s.id === victim)!.error).toMatch(/^set aside at step 2: /);
      await lab2.stop();
      await lab.trainer?.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('a validation slide that fails in the middle of training', () => {
  it('is left out of validation with its reason; the run goes on to the end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slide-lab-val-gone-'));
    try {
      const lab = new LabSession(deps(), FILES);
      const data = demoCopy(dir);
      lab.data = data;
      const victim = data.slides.find((s) => s.split === 'val')!;
      lab.on('step', (s) => {
        if (s.step === 0) unlinkSync(victim.url!); // gone before the first validation
      });
      await lab.start();
      await until(() => lab.state === 'done' || lab.state === 'error', 120_000);
      expect(lab.lastError).toBeNull();
      expect(lab.state).toBe('done');
      expect(lab.history.evals.length).toBeGreaterThanOrEqual(2);
      for (const ev of lab.history.evals) expect(ev.slides.map((s) => s.slideId)).not.toContain(victim.id);
      expect(lab.history.evals[0].setAside).toEqual([{ slideId: victim.id, reason: expect.stringContaining('no such file') }]);
      expect(lab.history.evals[1].setAside).toBeUndefined(); // left out of later passes, not read again
      expect(lab.data!.slides.find((s) => s.id === victim.id)!.error).toMatch(/set aside at step \d+: validation: .*no such file/);
      await lab.trainer?.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

const SYN = 'data=synthetic&encoder.width=4&tileSize=16&tiles=6&microBatch=2&ranks=2&epochs=1&optimizer.lr=0.003&augment.blur=0&backend=cpu&subset=8';

/** Encoder and aggregator weights of the session's live run. */
async function weightsOf(lab: LabSession): Promise<{ enc: Float32Array; agg: Float32Array }> {
  return { enc: await lab.trainer!.engine.encoderWeights(), agg: await lab.trainer!.engine.aggregatorWeights() };
}

describe('pause and stop cut the step in flight', () => {
  let uninterrupted: Promise<{ enc: Float32Array; agg: Float32Array }> | null = null;
  /** The weights at the end of the same run, never paused or stopped (computed once). */
  const plainRun = () =>
    (uninterrupted ??= (async () => {
      const plain = new LabSession(deps(), SYN);
      await plain.loadDefaultData();
      await plain.start();
      await until(() => plain.state === 'done');
      const w = await weightsOf(plain);
      await plain.trainer?.dispose();
      return w;
    })());

  it('a pause while the ranks encode drops the step and redoes it: the weights equal an uninterrupted run\'s', async () => {
    const want = await plainRun();

    const lab = new LabSession(deps(), SYN);
    await lab.loadDefaultData();
    let cuts = 0;
    lab.on('phase', (e) => {
      // Pause as soon as step 2 starts encoding: the ranks' reads and encode are cut.
      if (e.step === 2 && e.phase === 'forward' && e.at === 'start' && cuts++ === 0) lab.pause();
    });
    await lab.start();
    await until(() => lab.state === 'paused');
    expect(lab.history.steps.map((s) => s.step)).toEqual([0, 1]); // step 2 was dropped, not half done
    expect(lab.trainer!.engine.step).toBe(2);
    lab.resume();
    await until(() => lab.state === 'done');
    expect(lab.lastError).toBeNull();
    expect(cuts).toBeGreaterThanOrEqual(1);
    const got = await weightsOf(lab);
    expect(Array.from(got.enc)).toEqual(Array.from(want.enc));
    expect(Array.from(got.agg)).toEqual(Array.from(want.agg));
    await lab.trainer?.dispose();
  }, 120_000);

  it('a stop mid-step ends the run; its checkpoint holds the weights of the steps it counts', async () => {
    const store = new MemoryCheckpointStore();
    const lab = new LabSession(deps(store), SYN);
    await lab.loadDefaultData();
    let stopping: Promise<void> | null = null;
    // Stop while step 3's ranks recompute (after the aggregator's update: the step in flight is half done).
    lab.on('phase', (e) => {
      if (e.step === 3 && e.phase === 'aggregator' && e.at === 'end' && !stopping) stopping = lab.stop();
    });
    await lab.start();
    await until(() => stopping !== null);
    await stopping;
    await until(() => lab.state === 'stopped');
    expect(lab.trainer).toBeNull();
    const c = (await store.load())!;
    expect(c.step).toBe(3);
    expect(c.steps.map((s) => s.step)).toEqual([0, 1, 2]);
    // Resumed from that checkpoint, the run ends where an uninterrupted run ends.
    const want = await plainRun();
    const again = new LabSession(deps(store));
    expect(await again.restore(c)).toBe(true);
    await until(() => again.state === 'paused');
    again.resume();
    await until(() => again.state === 'done');
    const got = await weightsOf(again);
    expect(Array.from(got.enc)).toEqual(Array.from(want.enc));
    expect(Array.from(got.agg)).toEqual(Array.from(want.agg));
    await again.trainer?.dispose();
  }, 120_000);
});

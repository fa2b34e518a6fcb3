// Runs a lab preset (or any lab URL hash) headless in Debian's Chromium with WebGPU, prints
// progress, and writes the run's metrics as JSON.
//   npm run train:headless -- first-look [--out artifacts/headless-metrics.json] [--mode train|equivalence|k-sweep|frozen-vs-e2e] [--timeout-s 3600]
//   npm run train:headless -- '#tiles=32&ranks=2&data=synthetic'
//   npm run train:headless -- '#grid.mpp=1&tiles=16' --manifest cohort/manifest.csv
//     (serves the manifest's folder with range support and trains on it as data=manifest:<its URL>)
//   npm run train:headless -- paper-figures --out docs/figures [--repeats 5 --ks 4,16,64 --frozen-ks 16 --steps 48]
//     (the paper's figures from R runs per arm; 'paper-figures' = the pretrained-first-look preset, or give a preset/hash with --mode paper-figures)
// Uses SLIDE_LAB_URL when set (an already running lab), else starts Vite's dev server.
// A renderer crash (in Chromium a worker out of memory takes the whole renderer down) in --mode
// train reopens the lab and resumes from the last IndexedDB checkpoint, at most twice; the metrics
// JSON then lists the crashes (rendererCrashes: when, in s; the last step reported before it,
// 0-based as in the metrics; the checkpoint step it resumed from). Tests: SLIDE_LAB_TEST_FAULT (below).
// SLIDE_LAB_GPU=1 selects the real-GPU Chromium flags (see tools/chromium.ts).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Page } from 'playwright-core';
import { launch } from '../tools/chromium.ts';
import { labHash, settingsFromArgument } from '../src/lab/presets.ts';
import { startLabServer } from '../tools/lab-server.ts';
import { numberOf, parseCli, usageExit } from '../tools/cli.ts';
import { median } from '../src/core/stats.ts';
import { mergePaperFigures, paperFiguresSummary, writePaperFigures } from './paper-figures-out.ts';
import { armsOf, summarizePaperFigures, type PaperFigures, type PaperRun } from '../src/lab/paper-figures-data.ts';

type Mode = 'train' | 'equivalence' | 'k-sweep' | 'frozen-vs-e2e' | 'paper-figures';

const USAGE = 'usage: npm run train:headless -- <preset name, URL hash or paper-figures> [--out FILE, or DIR for paper-figures] [--mode train|equivalence|k-sweep|frozen-vs-e2e|paper-figures] [--timeout-s N] [--manifest CSV] [paper figures: --repeats R --ks 4,16,64 --frozen-ks 16 --steps N --val-fraction F --first-repeat I; or --from paper-figures.json[,more.json] [--smooth N] to redraw or merge]';
const MODES: readonly Mode[] = ['train', 'equivalence', 'k-sweep', 'frozen-vs-e2e', 'paper-figures'];

function parseArgs(argv: string[]) {
  const { values, positionals } = parseCli(argv, { out: { type: 'string' }, mode: { type: 'string' }, 'timeout-s': { type: 'string' }, manifest: { type: 'string' }, repeats: { type: 'string' }, ks: { type: 'string' }, 'frozen-ks': { type: 'string' }, steps: { type: 'string' }, 'val-fraction': { type: 'string' }, from: { type: 'string' }, smooth: { type: 'string' }, 'first-repeat': { type: 'string' } }, USAGE);
  if (positionals.length !== 1) usageExit(positionals.length ? `unexpected argument '${positionals[1]}'` : 'give a preset name or a URL hash', USAGE);
  const mode = values.mode as Mode | undefined;
  if (mode !== undefined && !MODES.includes(mode)) usageExit(`unknown mode '${mode}'`, USAGE);
  const timeoutS = numberOf(values['timeout-s'], 'timeout-s', 3600);
  if (!(timeoutS > 0)) usageExit('--timeout-s must be positive', USAGE);
  const kList = (v: string | undefined, name: string, dflt: number[]) => {
    if (v === undefined) return dflt;
    const ks = v === '' ? [] : v.split(',').map(Number);
    if (ks.some((k) => !Number.isInteger(k) || k < 1)) usageExit(`--${name} must be a comma-separated list of whole numbers`, USAGE);
    return ks;
  };
  const paper = {
    repeats: numberOf(values.repeats, 'repeats', 5), ks: kList(values.ks, 'ks', [4, 16, 64]), frozenKs: kList(values['frozen-ks'], 'frozen-ks', [16]),
    steps: numberOf(values.steps, 'steps', 0), valFraction: numberOf(values['val-fraction'], 'val-fraction', 0), firstRepeat: numberOf(values['first-repeat'], 'first-repeat', 0),
  };
  if (!(Number.isInteger(paper.repeats) && paper.repeats >= 1)) usageExit('--repeats must be a whole number of at least 1', USAGE);
  const isPaper = positionals[0] === 'paper-figures' || mode === 'paper-figures';
  if (values.manifest !== undefined && !existsSync(values.manifest)) usageExit(`--manifest ${values.manifest}: no such file`, USAGE);
  return { manifest: values.manifest, target: positionals[0] === 'paper-figures' ? 'pretrained-first-look' : positionals[0], out: values.out ?? (isPaper ? 'artifacts/paper-figures' : 'artifacts/headless-metrics.json'), mode: isPaper ? ('paper-figures' as Mode) : mode, timeoutS, paper, from: values.from, smooth: numberOf(values.smooth, 'smooth', 0) };
}

const { target, out: outArg, mode: modeArg, timeoutS, paper, manifest, from, smooth } = parseArgs(process.argv.slice(2));
// paper-figures: --out is a folder; the run's metrics go beside the figures.
const out = modeArg === 'paper-figures' ? `${outArg}/headless.json` : outArg;
if (from) {
  // paper-figures --from FILE: the figures again from a saved paper-figures.json (summaries recomputed; --smooth N re-smooths Fig. 4a), no training.
  // Several files (comma-separated; e.g. --first-repeat runs of one experiment in two processes): their runs together.
  const parts = from.split(',').map((file) => JSON.parse(readFileSync(file, 'utf8')) as PaperFigures);
  const f = mergePaperFigures(parts, smooth);
  const b = await launch();
  try {
    const files = await writePaperFigures(await b.newPage(), outArg, f);
    for (const line of paperFiguresSummary(f)) console.log(line);
    console.log(`wrote ${files.length} files to ${outArg}`);
  } finally {
    await b.close();
  }
  process.exit(0);
}
let settings;
try {
  settings = settingsFromArgument(target);
} catch (e) {
  usageExit((e as Error).message, USAGE);
}
const mode: Mode = modeArg ?? (settings.lab.panel === 'equivalence' ? 'equivalence' : settings.preset === 'frozen-vs-end-to-end' ? 'frozen-vs-e2e' : settings.preset === 'more-tiles-help' ? 'k-sweep' : 'train');
// --manifest: the lab server serves the manifest's folder (range requests) and the run reads it by URL.
const COHORT_PREFIX = '/cohort-local';
if (manifest) settings.lab.data = `manifest:${COHORT_PREFIX}/${encodeURIComponent(basename(manifest))}`;
const hash = labHash(settings);

// Planning a cohort (tissue detection over HTTP) takes longer than loading the demo index.
const loadTimeoutMs = settings.lab.data.startsWith('manifest:') ? 1_800_000 : 120_000;
const server = await startLabServer(manifest ? { serve: [{ prefix: COHORT_PREFIX, dir: dirname(manifest) }] } : {});
const base = server.url;

const t0 = Date.now();
const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s]`;
const browser = await launch();
let code = 0;
/** Renderer crashes survived: train mode reopens the lab and resumes from the last checkpoint, at most this often. */
const MAX_REOPEN = 2;
const rendererCrashes: { atS: number; lastStep: number; resumedFrom: number | null }[] = [];
let crashed = false;
try {
  // One context for every page: a reopened lab sees the crashed page's IndexedDB checkpoints.
  const context = await browser.newContext();
  const watch = (p: Page) => {
    p.on('pageerror', (e) => console.error(`${stamp()} page error: ${e.message}`));
    p.on('crash', () => (crashed = true));
    return p;
  };
  let page = watch(await context.newPage());
  const url = `${base}/${hash}`;
  // Tests: SLIDE_LAB_TEST_FAULT='{"rank":1,"kind":"oom","call":"backward","nth":3}' injects a rank fault in the first page only (?testFault, src/lab/browser.ts).
  const testFault = process.env.SLIDE_LAB_TEST_FAULT;
  console.log(`${stamp()} opening ${url} (${mode})${testFault ? ` with the test fault ${testFault}` : ''}`);
  await page.goto(testFault ? `${base}/?testFault=${encodeURIComponent(testFault)}${hash}` : url, { timeout: 180_000 }); // a cold dev server on a loaded machine transforms modules for minutes
  await page.waitForFunction(() => {
    const lab = (window as any).slideLab;
    return lab && ((lab.data && lab.state === 'ready') || lab.lastError);
  }, null, { timeout: loadTimeoutMs, polling: 250 });
  await page.waitForLoadState('networkidle');
  await page.waitForFunction(() => (window as any).slideLab?.data && (window as any).slideLab.state === 'ready', null, { timeout: loadTimeoutMs, polling: 250 });
  const data = await page.evaluate(() => {
    const d = (window as any).slideLab.data;
    return { name: d.name, slides: d.slides.length, usable: d.entries.length, errors: d.slides.filter((s: any) => s.error).map((s: any) => `${s.id}: ${s.error}`) };
  });
  console.log(`${stamp()} data: ${data.name}, ${data.usable} of ${data.slides} slides usable`);
  for (const e of data.errors) console.log(`${stamp()}   ${e}`);

  // A string, not a function: tsx's name helpers (__name) do not exist in the page.
  const trainAt = Date.now();
  await page.evaluate(`(() => {
    const lab = window.slideLab;
    const m = ${JSON.stringify(mode)};
    const t0 = performance.now();
    window.__headless = { done: false, result: null, evals: [] };
    const finish = (result) => Object.assign(window.__headless, { done: true, result });
    // When each validation arrived, counted from the Train press (time to a good AUC).
    lab.on('eval', (e) => window.__headless.evals.push({ s: (performance.now() - t0) / 1000, step: e.step, auc: e.auc }));
    if (m === 'train') {
      lab.on('state', (s) => { if (s === 'done' || s === 'error' || s === 'stopped') finish(null); });
      void lab.start();
    } else if (m === 'equivalence') void lab.runEquivalence().then(finish);
    else if (m === 'paper-figures') void lab.runPaperFigures(${JSON.stringify(paper)}).then((f) => finish(f ? 'done' : null));
    else void lab.runExperiment(m).then(finish);
  })()`);

  let lastStep = -1;
  let lastEval = 0;
  let lastStatus = '';
  let reportedAuc = false;
  let lastStatusAt = 0;
  const deadline = Date.now() + timeoutS * 1000;
  let lastEvals: unknown[] = [];
  for (;;) {
    const s = await page.evaluate(() => {
      const lab = (window as any).slideLab;
      const h = lab.history;
      const last = h.steps[h.steps.length - 1];
      const ranks = lab.rankInfo.map((r: any) => `rank ${r.rank} ${r.backend}${r.adapter ? ` (${[r.adapter.vendor, r.adapter.architecture].filter(Boolean).join(' ')})` : ''}${r.fallbackReason ? ` [${r.fallbackReason}]` : ''}`);
      if (lab.mainBackend) ranks.unshift(`main context ${lab.mainBackend.backend} (${lab.mainBackend.why})`);
      return {
        hl: (window as any).__headless, state: lab.state, error: lab.lastError, ranks,
        step: last ? { step: last.step, epoch: last.epoch, loss: last.loss, slide: last.slideId, wallMs: last.wallMs, k: last.k } : null,
        total: lab.trainer?.total ?? null,
        progress: lab.trainer?.progress() ?? null,
        evals: h.evals.map((e: any) => ({ epoch: e.epoch, step: e.step, auc: e.auc, lo: e.band.auc.lower, hi: e.band.auc.upper, trainLoss: e.trainLoss })),
        eq: lab.equivalenceRows.length,
        exp: lab.experimentRows.length,
        paper: lab.paperFiguresProgress ? `paper figures: ${lab.paperFiguresProgress.done} of ${lab.paperFiguresProgress.total} runs; ${lab.paperFiguresProgress.status}` : '',
      };
    }).catch((e) => {
      if (crashed || page.isClosed()) return null;
      throw e;
    });
    if (!s) {
      // The renderer is gone (a worker out of memory takes the whole renderer down in Chromium, as
      // can a GPU process crash): nothing in the page could recover. The checkpoint is the recovery.
      rendererCrashes.push({ atS: (Date.now() - t0) / 1000, lastStep, resumedFrom: null });
      const giveUp = mode !== 'train' || rendererCrashes.length > MAX_REOPEN;
      const why = mode !== 'train' ? `; only --mode train resumes from a checkpoint (${mode} does not)` : rendererCrashes.length > MAX_REOPEN ? `; giving up after ${MAX_REOPEN} reopenings` : '';
      console.error(`${stamp()} renderer crashed (a worker out of memory or a GPU process crash)${giveUp ? why : '; reopening the lab to resume from the last checkpoint'}`);
      if (giveUp) {
        mkdirSync(dirname(out), { recursive: true });
        const message = `the renderer crashed ${rendererCrashes.length} time(s) (a worker out of memory or a GPU process crash)${why}`;
        writeFileSync(out, JSON.stringify({ kind: 'slide-lab-headless', url, elapsedS: (Date.now() - t0) / 1000, mode, state: 'crashed', error: { where: 'renderer', message }, rendererCrashes, evalTimesS: lastEvals }, null, 1));
        console.error(`${stamp()} error at renderer: ${message}; wrote ${out}`);
        await browser.close();
        await server.close();
        process.exit(1);
      }
      await page.close().catch(() => undefined);
      crashed = false;
      page = watch(await context.newPage());
      await page.goto(url, { timeout: 180_000 });
      await page.waitForFunction(() => (window as any).slideLab?.data && (window as any).slideLab.state === 'ready', null, { timeout: loadTimeoutMs, polling: 250 });
      // Restore the checkpoint (weights, both optimizers' state, history; the loop parks at its step) and go on.
      const from = (await page.evaluate(`(async () => {
        const lab = window.slideLab;
        const t0 = performance.now() - ${Date.now() - trainAt};
        window.__headless = { done: false, result: null, evals: ${JSON.stringify(lastEvals)} };
        const finish = (result) => Object.assign(window.__headless, { done: true, result });
        lab.on('eval', (e) => window.__headless.evals.push({ s: (performance.now() - t0) / 1000, step: e.step, auc: e.auc }));
        lab.on('state', (s) => { if (s === 'done' || s === 'error' || s === 'stopped') finish(null); });
        const c = await lab.latestCheckpoint();
        if (c) {
          const parked = new Promise((resolve) => { const off = lab.on('state', (s) => s === 'paused' && (off(), resolve())); });
          if (!(await lab.restore(c))) return -1;
          if (lab.state !== 'paused') await parked;
        }
        void lab.start();
        return c ? c.step : null;
      })()`)) as number | null;
      rendererCrashes[rendererCrashes.length - 1].resumedFrom = from;
      console.log(`${stamp()} reopened the lab: ${from === null ? 'no checkpoint was saved, training starts again from step 0' : from < 0 ? 'the checkpoint could not be restored (see the error below)' : `resuming from the checkpoint of step ${from}`}`);
      lastStep = -1;
      lastEval = 0;
      continue;
    }
    lastEvals = s.hl.evals ?? lastEvals;
    if (s.step && s.step.step !== lastStep) {
      if (lastStep === -1) console.log(`${stamp()} ${s.ranks.join('; ')}`);
      lastStep = s.step.step;
      const p = s.progress;
      console.log(`${stamp()} step ${s.step.step + 1}${s.total ? `/${s.total}` : ''} epoch ${s.step.epoch + 1} loss ${s.step.loss.toFixed(4)} slide ${s.step.slide} ${(s.step.wallMs / 1000).toFixed(2)} s ${p ? `${p.tilesPerSec.toFixed(1)} tiles/s eta ${Math.round(p.etaMs / 1000)} s` : ''}`);
    }
    for (const e of s.evals.slice(lastEval)) console.log(`${stamp()} validation after step ${e.step} (epoch ${Number.isInteger(e.epoch) ? e.epoch : e.epoch.toFixed(2)}): AUC ${e.auc?.toFixed(3)} (95% CI ${e.lo?.toFixed(3)}-${e.hi?.toFixed(3)}), train loss ${e.trainLoss?.toFixed(4)}`);
    lastEval = s.evals.length;
    const status = mode === 'equivalence' ? `equivalence rows: ${s.eq}` : mode === 'train' ? '' : mode === 'paper-figures' ? s.paper : `experiment runs done: ${s.exp}`;
    // Paper figures: a line per finished run, and the current step at most every 30 s.
    const quiet = mode === 'paper-figures' && status.split(';')[0] === lastStatus.split(';')[0] && Date.now() - lastStatusAt < 30_000;
    if (status && status !== lastStatus && !quiet) {
      console.log(`${stamp()} ${(lastStatus = status)}`);
      lastStatusAt = Date.now();
    }
    const good = !reportedAuc && (s.hl.evals as { s: number; step: number; auc: number }[] | undefined)?.find((e) => e.auc >= 0.9);
    if (good) {
      // As soon as it happens (the run goes on; Ctrl-C is fine once this line is out).
      console.log(`${stamp()} time to validation AUC >= 0.9: ${good.s.toFixed(1)} s from Train (after step ${good.step}, AUC ${good.auc.toFixed(3)})`);
      reportedAuc = true;
    }
    if (s.hl.done || s.error) break;
    if (Date.now() > deadline) {
      console.error(`${stamp()} timed out after ${timeoutS} s`);
      code = 1;
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }

  const result = await page.evaluate((m) => {
    const lab = (window as any).slideLab;
    return { mode: m, state: lab.state, error: lab.lastError, main: lab.mainBackend, metrics: lab.metricsJson(), equivalence: lab.equivalenceRows, experiments: lab.experimentRows };
  }, mode);
  mkdirSync(dirname(out), { recursive: true });
  const evalTimesS = (await page.evaluate(() => (window as any).__headless.evals)) as { s: number; step: number; auc: number }[];
  writeFileSync(out, JSON.stringify({ kind: 'slide-lab-headless', url, elapsedS: (Date.now() - t0) / 1000, evalTimesS, ...result, ...(rendererCrashes.length ? { rendererCrashes } : {}) }, null, 1));
  const sm = result.metrics.summary;
  if (result.error) {
    console.error(`${stamp()} error at ${result.error.where}: ${result.error.message}`);
    code = 1;
  }
  const aggMs = result.metrics.steps.map((st: { main: Record<string, number> }) => st.main.aggregator ?? NaN).filter(Number.isFinite).sort((a: number, b: number) => a - b);
  if (aggMs.length) console.log(`${stamp()} main context ${result.main?.backend ?? '?'}: aggregator phase ${median(aggMs).toFixed(0)} ms median per step (first step ${result.metrics.steps[0].main.aggregator.toFixed(0)} ms), step wall ${median(result.metrics.steps.map((st: { wallMs: number }) => st.wallMs)).toFixed(0)} ms median`);
  const evalTimes = evalTimesS;
  const good = evalTimes.find((e) => e.auc >= 0.9);
  if (mode === 'train') console.log(`${stamp()} time to validation AUC >= 0.9: ${good ? `${good.s.toFixed(1)} s from Train (after step ${good.step}, AUC ${good.auc.toFixed(3)})` : `not reached (${evalTimes.length} validations, best AUC ${Math.max(...evalTimes.map((e) => e.auc)).toFixed(3)})`}`);
  for (const e of result.metrics.evals as { epoch: number; step: number; attentionAuc: number; attentionPrecisionAt5: number; attentionChance: number; attentionSlides: number }[]) {
    if (e.attentionSlides) console.log(`${stamp()} attention, validation after step ${e.step}: lesion-vs-other AUC ${e.attentionAuc.toFixed(3)}, precision@5 ${e.attentionPrecisionAt5.toFixed(2)} (chance ${e.attentionChance.toFixed(2)}) on ${e.attentionSlides} positive slides`);
  }
  if (mode === 'train') console.log(`${stamp()} ${sm.steps} steps: loss ${sm.firstLoss?.toFixed(4)} -> ${sm.lastLoss?.toFixed(4)} (last-epoch mean ${sm.finalTrainLoss?.toFixed(4)}), final AUC ${sm.finalAuc?.toFixed(3)}, ${sm.tilesPerSec?.toFixed(2)} tiles/s overall, ${sm.medianTilesPerSec?.toFixed(2)} tiles/s median step; ranks: ${sm.adapters.join('; ')}`);
  if (mode === 'equivalence') {
    const rows = result.equivalence as { step: number; lossDiff: number; param: Record<string, number>; grad: Record<string, number>; pass: boolean }[];
    for (const r of rows) console.log(`${stamp()} step ${r.step + 1}: |loss diff| ${r.lossDiff.toExponential(2)}, max param L1 ${Math.max(...Object.values(r.param)).toExponential(2)}, max grad L1 ${Math.max(...Object.values(r.grad)).toExponential(2)} ${r.pass ? 'pass' : 'FAIL'}`);
    if (!rows.length || rows.some((r) => !r.pass)) code = 1;
  }
  if (mode === 'k-sweep' || mode === 'frozen-vs-e2e') {
    for (const r of result.experiments as { variant: string; finalTrainLoss: number; auc: number; steps: number; wallMs: number; firstStepMs: number; reusedRanks: boolean }[]) {
      console.log(`${stamp()} ${r.variant}: ${r.steps} steps, final train loss ${r.finalTrainLoss.toFixed(4)}, val AUC ${r.auc.toFixed(3)}; run ${(r.wallMs / 1000).toFixed(1)} s, first step ${(r.firstStepMs / 1000).toFixed(1)} s, ${r.reusedRanks ? 'warm (reused) workers' : 'workers started'}`);
    }
  }
  if (mode === 'paper-figures') {
    let f = await page.evaluate(() => (window as any).slideLab.paperFigures);
    const partial = f ? [] : ((await page.evaluate(() => (window as any).slideLab.paperFiguresProgress?.runs ?? [])) as PaperRun[]);
    if (!f && partial.length) {
      // Timed out or failed part way: the figures of the runs that finished, marked partial.
      console.error(`${stamp()} the experiment did not finish: figures from the ${partial.length} runs that did`);
      const cfg = settings.config;
      const enc = `${cfg.encoder.kind} width ${cfg.encoder.width}${cfg.encoder.pretrained ? ` from ${cfg.encoder.pretrained}` : ''}`;
      f = summarizePaperFigures(
        { hash, data: data.name, slides: data.usable, repeats: paper.repeats, valFraction: paper.valFraction, stepsPerRun: Math.max(...partial.map((r) => r.steps)), ks: paper.ks, frozenKs: paper.frozenKs, smooth: 8, bootstrapRounds: 1000, seed: cfg.seed, encoder: `${enc} (PARTIAL: ${partial.length} runs)` },
        armsOf(paper.ks, paper.frozenKs), partial, (Date.now() - t0),
      );
      code = 1;
    }
    if (!f) {
      console.error(`${stamp()} no paper figures (the experiment failed or was cancelled)`);
      code = 1;
    } else {
      const files = await writePaperFigures(page, outArg, f);
      for (const line of paperFiguresSummary(f)) console.log(`${stamp()} ${line}`);
      console.log(`${stamp()} wrote ${files.length} files to ${outArg}: ${files.join(', ')}`);
    }
  }
  const shot = out.replace(/\.json$/, '') + '.png';
  await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
  console.log(`${stamp()} wrote ${out} and ${shot}`);
} finally {
  await browser.close();
  await server.close();
}
process.exit(code);

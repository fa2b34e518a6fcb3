// The same run on PyTorch torch.distributed: `npm run export:torch` writes a run directory, torchrun
// trains it with gloo on the CPU (1 aggregator process + 2 encoder processes), and the TypeScript
// engine trains the same configuration (in-process ranks, cpu backend). Per step: the loss, the
// normalised L1 of every parameter after the step, and the gradients of the tracked layers agree
// within the equivalence tolerance; the inputs, tile plans and dropout masks are bit-identical;
// the checkpoint imports into the lab's weights format. A negative control (averaging the encoder
// gradients instead of summing them) must fail the gradient check.
// Needs /usr/bin/python3 with torch (Debian's python3-torch; scripts/ensure-system.mjs installs it
// as root); skips, saying so, when it cannot import torch.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../src/core/tf.ts';
import { featureDim, parseConfig, inputNorm, type Config } from '../src/core/config.ts';
import { Engine } from '../src/core/engine.ts';
import { TOLERANCE, trackedLayers } from '../src/core/equivalence.ts';
import { normalizedL1 } from '../src/core/metrics.ts';
import { encoderForward, encoderSpecs } from '../src/core/models/encoder.ts';
import { dropoutMask } from '../src/core/models/aggregator.ts';
import { initialValues, unpack } from '../src/core/params.ts';
import { hash32, Rng, stringKey } from '../src/core/rng.ts';
import { evalKey, rankSlots, Sampler, sampleTiles, type SlideEntry } from '../src/core/sampler.ts';
import { syntheticSlides, SyntheticTiles } from '../src/core/tiles.ts';
import { augmentFor, preprocessTile } from '../src/core/augment.ts';
import { scheduleAt } from '../src/core/optim/schedule.ts';
import { importWeights } from '../src/lab/export.ts';
import { inProcessRanks } from '../src/transport/in-process.ts';
import { writeSafetensors } from '../src/core/weights/index.ts';
import { exportTorchRun } from './export-torch.ts';

/** Debian's python3-torch lives in /usr/bin/python3 (the python3 on PATH may be another one); SLIDE_LAB_PYTHON picks another. */
const PYTHON = process.env.SLIDE_LAB_PYTHON ?? '/usr/bin/python3';
const torchCheck = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
const TORCH_OK = torchCheck.status === 0;
const SKIP_REASON = `${PYTHON} cannot import torch (${(torchCheck.stderr || torchCheck.error?.message || '').trim().split('\n').at(-1) || 'not found'}); install Debian's python3-torch (npm test does as root)`;
if (!TORCH_OK) console.warn(`torch-equivalence: SKIPPED: ${SKIP_REASON}`);
const named = (title: string) => (TORCH_OK ? title : `${title} [skipped: ${SKIP_REASON}]`);

/**
 * The attention-score bias: softmax over the K tiles ignores a shift of every score, so its
 * gradient is exactly 0 and what either side computes is rounding noise (~1e-9), which AdamW's
 * m / sqrt(v) turns into a step of +-lr with the noise's sign. It is compared in absolute terms.
 */
const SHIFT_INVARIANT = 'agg.attn_c.b';

const HASH = 'data=synthetic&encoder.width=4&tileSize=16&tiles=6&microBatch=3&ranks=2&backend=cpu&subset=8';
const STEPS = 3;

const work = mkdtempSync(join(tmpdir(), 'slide-lab-torch-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** safetensors -> name -> Float32Array / Int32Array (the dtypes the Python side writes). */
function readSafetensors(path: string): { tensors: Map<string, { shape: number[]; data: Float32Array | Int32Array }>; meta: Record<string, string> } {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const meta = (header.__metadata__ ?? {}) as unknown as Record<string, string>;
  delete header.__metadata__;
  const tensors = new Map<string, { shape: number[]; data: Float32Array | Int32Array }>();
  for (const [name, t] of Object.entries(header)) {
    const bytes = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
    const copy = new Uint8Array(bytes).buffer;
    if (t.dtype === 'F32') tensors.set(name, { shape: t.shape, data: new Float32Array(copy) });
    else if (t.dtype === 'I32') tensors.set(name, { shape: t.shape, data: new Int32Array(copy) });
    else throw new Error(`${path}: unexpected dtype ${t.dtype} for ${name}`);
  }
  return { tensors, meta };
}

const f32 = (m: ReturnType<typeof readSafetensors>['tensors'], name: string) => {
  const t = m.get(name);
  if (!t) throw new Error(`trace has no tensor ${name}`);
  return t.data as Float32Array;
};

/** A TCP port nobody listens on now (each torchrun gets its own rendezvous port). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs torchrun (slidelab.launch: torchrun with Debian's Python 3.11 fix) in the run directory. */
async function torchrun(dir: string, args: string[], nproc = 3): Promise<{ code: number; out: string; seconds: number }> {
  const port = await freePort();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const launch = ['--master_addr', '127.0.0.1', '--master_port', String(port), '--monitor_interval', '0.2', '--nproc_per_node', String(nproc)];
    const child = spawn(PYTHON, ['-m', 'slidelab.launch', ...launch, '-m', 'slidelab.train', '.', ...args], {
      cwd: dir, env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

function python(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { cwd, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

const b64 = (a: Uint8Array | Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** Values the numpy ports must reproduce bit for bit (checked by python -m slidelab.check). */
async function vectors(cfg: Config): Promise<unknown> {
  const slides = syntheticSlides(16, cfg.seed, 32);
  const src = new SyntheticTiles(cfg.seed, slides);
  const r = new Rng(1, 2, 3);
  const hashes: [number[], number][] = [];
  for (let i = 0; i < 300; i++) {
    const words = Array.from({ length: 1 + (i % 6) }, () => Math.floor(r.next() * 2 ** 32) - (i % 3 === 0 ? 2 ** 31 : 0));
    hashes.push([words, hash32(...words)]);
  }
  const smp = new Sampler(slides, cfg.seed, cfg.tiles);
  const tiles = [];
  for (const size of [16, 37, 64]) {
    for (const s of slides.slice(0, 6)) {
      const t = Int32Array.from({ length: 8 }, (_, i) => i * 3);
      tiles.push({ slide: s.id, tiles: Array.from(t), size, bytes: b64(await src.read(s.id, t, size)) });
    }
  }
  const px = await src.read(slides[1].id, Int32Array.from([0, 1, 2, 3]), 16);
  const norm = inputNorm(cfg.encoder);
  const preprocess = Array.from({ length: 16 }, (_, i) => {
    const aug = { flip: i % 2 === 1, rot: (i >> 1) % 4, blur: i >= 8 };
    const one = px.slice((i % 4) * 768, (i % 4 + 1) * 768);
    const out = new Float32Array(16 * 16 * 3);
    preprocessTile(one, 16, aug, norm, out, 0);
    return { size: 16, src: b64(one), ...aug, ...norm, out: b64(out) };
  });
  return {
    hash32: hashes,
    stringKey: ['', 'synthetic-000', 'enc.conv1.w', 'é ü 漢字 😀'].map((s) => [s, stringKey(s)]),
    rng: [[7, 1, 0], [0], [2 ** 31 - 1, 4, 99, 5]].map((key) => {
      const a = new Rng(...key), b = new Rng(...key), c = new Rng(...key);
      return { key, next: Array.from({ length: 500 }, () => a.next()), intN: 37, ints: Array.from({ length: 200 }, () => b.int(37)), normals: Array.from({ length: 200 }, () => c.normal()) };
    }),
    seed: cfg.seed, k: cfg.tiles, slides, syntheticArgs: { count: 16, seed: cfg.seed, tilesPerSlide: 32 },
    plans: Array.from({ length: 40 }, (_, s) => { const p = smp.plan(s); return { step: s, slide: p.slide.id, epoch: p.epoch, tileIndices: Array.from(p.tileIndices) }; }),
    sampleTiles: [[3, 6], [6, 6], [40, 6], [1, 5], [100, 64]].flatMap(([n, k]) => Array.from({ length: 5 }, (_, s) => ({ numTiles: n, k, seed: 7 + s, step: s, out: Array.from(sampleTiles(n, k, 7 + s, s)) }))),
    rankSlots: [[6, 2], [10, 3], [2, 4], [7, 7]].flatMap(([k, n]) => Array.from({ length: n }, (_, rank) => ({ k, rank, ranks: n, out: Array.from(rankSlots(k, rank, n)) }))),
    evalKey: Array.from({ length: 10 }, (_, i) => ({ seed: cfg.seed, i, out: evalKey(cfg.seed, i) })),
    tiles,
    lesions: slides.flatMap((s) => Array.from({ length: 20 }, (_, t) => ({ slide: s.id, tile: t, lesion: src.isLesion(s.id, t) }))),
    config: cfg,
    augments: Array.from({ length: 60 }, (_, i) => ({ step: Math.floor(i / 6), slot: i % 6, ...augmentFor(cfg, Math.floor(i / 6), i % 6) })),
    preprocess,
    dropout: ([[0.25, 0, 0], [0.25, 1, 3], [0.5, 0, 7], [0, 1, 1]] as const).map(([rate, layer, step]) => ({ seed: cfg.seed, step, slots: 6, layer, rate, out: b64(dropoutMask(cfg.seed, step, 6, layer, rate)) })),
    schedule: [1, 2, 12, 100].flatMap((total) => [0, 3].flatMap((warmup) => Array.from({ length: total }, (_, step) => ({ opt: cfg.optimizer, step, total, warmup, ...scheduleAt(cfg.optimizer, step, total, warmup) })))),
    pow: { base: cfg.optimizer.beta2, values: Array.from({ length: 2000 }, (_, t) => [t + 1, cfg.optimizer.beta2 ** (t + 1)]) },
  };
}

interface TsStep {
  loss: number;
  slide: string;
  tileIndices: number[];
  enc: Map<string, Float32Array>;
  agg: Map<string, Float32Array>;
  encGrad: Map<string, Float32Array>;
  aggGrad: Map<string, Float32Array>;
}

/** The TypeScript engine on the exported configuration: in-process ranks, cpu backend, kept gradients. */
async function typescriptRun(cfg: Config, slides: SlideEntry[]): Promise<{ steps: TsStep[]; evalProbs: Map<string, number> }> {
  await tf.setBackend('cpu');
  const engine = new Engine(cfg, slides, inProcessRanks(cfg.ranks), { keepGradients: true, prefetch: false });
  const encSpecs = encoderSpecs(cfg.encoder, cfg.tileSize);
  const steps: TsStep[] = [];
  try {
    await engine.init({ kind: 'synthetic', seed: cfg.seed, slides });
    for (let i = 0; i < STEPS; i++) {
      const report = await engine.trainStep();
      steps.push({
        loss: report.loss, slide: report.slideId, tileIndices: report.attention.tileIndices,
        enc: unpack(encSpecs, await engine.encoderWeights()), agg: unpack(engine.aggSpecs, await engine.aggregatorWeights()),
        encGrad: unpack(encSpecs, engine.lastEncoderGrad!.slice()), aggGrad: new Map(engine.lastAggregatorGrads!),
      });
    }
    const ev = await engine.evaluate();
    return { steps, evalProbs: new Map(ev.slides.map((s) => [s.slideId, s.prob])) };
  } finally {
    await engine.dispose();
  }
}

describe('PyTorch torch.distributed (torchrun, gloo, 1 aggregator + 2 encoder processes) against the TypeScript engine', () => {
  it.skipIf(!TORCH_OK)(named('3 steps: same loss, parameters and gradients; bit-identical inputs, plans and masks; negative control fails'), async () => {
    const exported = await exportTorchRun(HASH, { out: join(work, 'run') });
    const dir = exported.dir;
    const cfg = parseConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).config);
    expect(cfg.ranks).toBe(2);
    const slides = (JSON.parse(readFileSync(join(dir, 'slides.json'), 'utf8')) as { slides: SlideEntry[] }).slides;
    writeFileSync(join(work, 'vectors.json'), JSON.stringify(await vectors(cfg)));

    // The gloo runs and the bit-exactness check start at once; the TypeScript engine runs meanwhile.
    const mainRun = torchrun(dir, ['--steps', String(STEPS), '--out', 'result', '--trace', 'trace']);
    const control = torchrun(dir, ['--steps', '1', '--out', 'control', '--trace', 'control-trace', '--no-eval', '--average-gradients']);
    const check = python(['-m', 'slidelab.check', join(work, 'vectors.json')], dir);
    const ts = await typescriptRun(cfg, slides);
    const [run, neg, bits] = await Promise.all([mainRun, control, check]);

    expect(bits.code, bits.out).toBe(0);
    const bitReport = JSON.parse(bits.out.trim().split('\n').at(-1)!) as Record<string, { checked: number; mismatches: number }>;
    expect(run.code, run.out).toBe(0);
    expect(neg.code, neg.out).toBe(0);

    const metrics = JSON.parse(readFileSync(join(dir, 'result/metrics.json'), 'utf8'));
    expect(metrics.kind).toBe('slide-lab-metrics');
    expect(metrics.steps).toHaveLength(STEPS);
    const layers = trackedLayers(cfg);
    const encSpecs = encoderSpecs(cfg.encoder, cfg.tileSize);
    const norm = inputNorm(cfg.encoder);
    const tiles = new SyntheticTiles(cfg.seed, slides);
    const sampler = new Sampler(slides, cfg.seed, cfg.tiles);
    const rows: { step: number; lossTs: number; lossTorch: number; lossDiff: number; param: number; paramAll: string; tracked: Record<string, number>; grad: Record<string, number>; gradAll: number; noise: number }[] = [];
    let inputBits = 0, inputValues = 0, maskBits = 0;
    for (let s = 0; s < STEPS; s++) {
      const main = readSafetensors(join(dir, `trace/step-${String(s).padStart(4, '0')}.main.safetensors`)).tensors;
      const enc1 = readSafetensors(join(dir, `trace/step-${String(s).padStart(4, '0')}.rank1.safetensors`)).tensors;
      const t = ts.steps[s];
      const plan = sampler.plan(s);
      // the same slide and tiles, from the seed, on both sides
      expect(metrics.steps[s].slide).toBe(t.slide);
      expect(Array.from(main.get('tileIndices')!.data)).toEqual(t.tileIndices);
      expect(plan.slide.id).toBe(t.slide);
      // the dropout masks, bit for bit
      for (const layer of [0, 1] as const) {
        const want = dropoutMask(cfg.seed, s, cfg.tiles, layer, cfg.dropout);
        const got = f32(main, `mask${layer}`);
        for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) maskBits++;
      }
      // each encoder rank's normalised, augmented inputs, bit for bit (rank r holds slots r-1, r-1+N, ...)
      for (let r = 1; r <= cfg.ranks; r++) {
        const trace = readSafetensors(join(dir, `trace/step-${String(s).padStart(4, '0')}.rank${r}.safetensors`)).tensors;
        const slots = Array.from(trace.get('slots')!.data);
        expect(slots).toEqual(Array.from(rankSlots(cfg.tiles, r - 1, cfg.ranks)));
        const got = f32(trace, 'input');
        const size = cfg.tileSize * cfg.tileSize * 3;
        const px = await tiles.read(plan.slide.id, Int32Array.from(slots, (k) => plan.tileIndices[k]), cfg.tileSize);
        const want = new Float32Array(slots.length * size);
        slots.forEach((k, i) => preprocessTile(px.subarray(i * size, (i + 1) * size), cfg.tileSize, augmentFor(cfg, s, k), norm, want, i * size));
        const gotBits = new Uint32Array(got.buffer, got.byteOffset, got.length);
        const wantBits = new Uint32Array(want.buffer);
        for (let i = 0; i < want.length; i++) if (gotBits[i] !== wantBits[i]) inputBits++;
        inputValues += want.length;
      }
      const lossTorch = f32(main, 'loss')[0];
      const aggNames = [...t.agg.keys()].filter((name) => name !== SHIFT_INVARIANT);
      const paramDiffs: [string, number][] = [
        ...encSpecs.map((sp) => [sp.name, normalizedL1(f32(enc1, `param.${sp.name}`), t.enc.get(sp.name)!)] as [string, number]),
        ...aggNames.map((name) => [name, normalizedL1(f32(main, `param.${name}`), t.agg.get(name)!)] as [string, number]),
      ];
      const gradOf = (name: string) => (name.startsWith('agg.') ? normalizedL1(f32(main, `grad.${name}`), t.aggGrad.get(name)!) : normalizedL1(f32(enc1, `grad.${name}`), t.encGrad.get(name)!));
      const grad = Object.fromEntries(layers.map((l) => [l, gradOf(l)]));
      const worstParam = paramDiffs.reduce((a, b) => (b[1] > a[1] ? b : a));
      rows.push({
        step: s, lossTs: t.loss, lossTorch, lossDiff: Math.abs(t.loss - lossTorch), param: worstParam[1], paramAll: worstParam[0], grad,
        tracked: Object.fromEntries(layers.map((l) => [l, paramDiffs.find(([n]) => n === l)![1]])),
        gradAll: Math.max(...encSpecs.map((sp) => gradOf(sp.name)), ...aggNames.map(gradOf)),
        noise: Math.max(Math.abs(f32(main, `grad.${SHIFT_INVARIANT}`)[0]), Math.abs(t.aggGrad.get(SHIFT_INVARIANT)![0])),
      });
      expect(metrics.steps[s].loss).toBe(lossTorch);
    }

    // Negative control: averaging (DDP's default) instead of summing halves the encoder gradient.
    const negMain = readSafetensors(join(dir, 'control-trace/step-0000.main.safetensors')).tensors;
    const negEnc = readSafetensors(join(dir, 'control-trace/step-0000.rank1.safetensors')).tensors;
    const negGrad = Object.fromEntries(layers.filter((l) => l.startsWith('enc.')).map((l) => [l, normalizedL1(f32(negEnc, `grad.${l}`), ts.steps[0].encGrad.get(l)!)]));
    const negLoss = Math.abs(f32(negMain, 'loss')[0] - ts.steps[0].loss);

    // Validation after step 3 on both sides.
    const evalDiff = Math.max(...metrics.evals.at(-1).slides.map((sl: { slide: string; prob: number }) => Math.abs(sl.prob - ts.evalProbs.get(sl.slide)!)));

    // The checkpoint comes back in the lab's names and layouts, and in the lab's weights format.
    const ckpt = readSafetensors(join(dir, 'result/checkpoint.safetensors'));
    const last = readSafetensors(join(dir, `trace/step-${String(STEPS - 1).padStart(4, '0')}.rank1.safetensors`)).tensors;
    for (const sp of encSpecs) expect(ckpt.tensors.get(sp.name)!.data).toEqual(f32(last, `param.${sp.name}`));
    const modelJson = readFileSync(join(dir, 'result/model.json'), 'utf8');
    const bin = readFileSync(join(dir, 'result/weights.bin'));
    const imported = importWeights(modelJson, new Uint8Array(bin).buffer, encSpecs, [...ts.steps[0].agg.keys()].map((name) => ({ name, shape: ckpt.tensors.get(name)!.shape, init: 'zeros' as const, decay: false })));
    expect(imported.step).toBe(STEPS);
    expect(normalizedL1(imported.encoder, Float32Array.from(encSpecs.flatMap((sp) => Array.from(ts.steps[STEPS - 1].enc.get(sp.name)!))))).toBeLessThan(TOLERANCE.param);

    const fmt = (x: number) => x.toExponential(2);
    const paramCount = encSpecs.length + ts.steps[0].agg.size - 1;
    console.log([
      `torch-equivalence: ${HASH}`,
      `  gloo torchrun, ${cfg.ranks} encoder processes + aggregator, ${STEPS} steps: ${run.seconds.toFixed(1)} s wall (launch + imports included; training loop ${metrics.source.wallSeconds.toFixed(2)} s); torch ${metrics.source.torch}`,
      ...rows.map((r) => `  step ${r.step}: loss ts ${r.lossTs.toFixed(7)} torch ${r.lossTorch.toFixed(7)} |diff| ${fmt(r.lossDiff)}; params ${Object.entries(r.tracked).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}, worst of the ${paramCount} ${fmt(r.param)} (${r.paramAll}); grads ${Object.entries(r.grad).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}; worst grad of any layer ${fmt(r.gradAll)}; |dL/d ${SHIFT_INVARIANT}| (0 in exact arithmetic) ${fmt(r.noise)}`),
      `  bit-identical: inputs ${inputValues - inputBits}/${inputValues} float32 values, dropout masks (${maskBits} differing), tile plans; numpy ports: ${Object.entries(bitReport).filter(([, v]) => typeof v === 'object').map(([k, v]) => `${k} ${v.mismatches}/${v.checked}`).join(', ')}`,
      `  validation P(positive) after step ${STEPS}: largest |diff| ${fmt(evalDiff)}`,
      `  negative control (--average-gradients): grads ${Object.entries(negGrad).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')} (loss |diff| ${fmt(negLoss)}); ${neg.seconds.toFixed(1)} s`,
    ].join('\n'));

    // The verdicts.
    for (const r of rows) {
      expect(r.lossDiff).toBeLessThan(TOLERANCE.loss);
      expect(r.param).toBeLessThan(TOLERANCE.param);
      for (const v of Object.values(r.grad)) expect(v).toBeLessThan(TOLERANCE.grad);
      expect(r.gradAll).toBeLessThan(TOLERANCE.grad);
      expect(r.noise).toBeLessThan(1e-6);
    }
    expect(rows.every((r) => r.lossTs > 0 && Number.isFinite(r.lossTorch))).toBe(true);
    expect(inputBits).toBe(0);
    expect(maskBits).toBe(0);
    expect(evalDiff).toBeLessThan(TOLERANCE.loss);
    for (const [name, v] of Object.entries(bitReport)) if (typeof v === 'object' && !['schedule', 'betaPow'].includes(name)) expect(v.mismatches, name).toBe(0);
    for (const v of Object.values(negGrad)) expect(v).toBeGreaterThan(0.1);
  }, 300_000);
});

/** Every encoder kind, with the odd sizes and options that exercise the ports (tfjs 'same' padding on 17 px, timm's options). */
const ENCODER_CASES = [
  { name: 'tiny-cnn-17px', tileSize: 17, encoder: { kind: 'tiny-cnn', width: 4 } },
  { name: 'resnet-groupnorm-64px', tileSize: 64, encoder: { kind: 'resnet', width: 4, depth: 18 } },
  { name: 'resnet-frozen-bn-24px', tileSize: 24, encoder: { kind: 'resnet', width: 4, depth: 18, norm: 'frozen-bn' } },
  { name: 'tv-resnet-18', tileSize: 32, encoder: { kind: 'tv-resnet', width: 4, depth: 18 } },
  { name: 'tv-resnet-50-trunc', tileSize: 32, encoder: { kind: 'tv-resnet', width: 4, depth: 50, truncate: true } },
  { name: 'vit', tileSize: 16, encoder: { kind: 'vit', patch: 4, dim: 16, blocks: 2, heads: 2, mlpHidden: 32 } },
  { name: 'vit-registers-swiglu-layerscale', tileSize: 16, encoder: { kind: 'vit', patch: 4, dim: 16, blocks: 2, heads: 4, mlpHidden: 24, mlp: 'swiglu', layerScale: true, regTokens: 2, noEmbedClass: true, pool: 'cls+mean', fcNorm: true, qkvBias: false } },
];

describe('the PyTorch encoders against the lab encoders (features and gradients of sum(features * dy))', () => {
  it.skipIf(!TORCH_OK)(named('tiny CNN, GroupNorm / frozen-BN ResNet, torchvision ResNet-18 and -50 trunc, ViTs'), async () => {
    await tf.setBackend('cpu');
    const folder = process.env.KEEP_ENCODER_CASES ?? join(work, 'encoders');
    mkdirSync(folder, { recursive: true });
    const cases = [];
    for (const c of ENCODER_CASES) {
      const cfg = parseConfig({ tileSize: c.tileSize, encoder: c.encoder });
      const specs = encoderSpecs(cfg.encoder, cfg.tileSize);
      const rng = new Rng(cfg.seed, 99, stringKey(c.name));
      // the seed's initial values plus noise, so that norms, LayerScale and tokens are not trivially 1 or 0
      const values = new Map(specs.map((s) => [s.name, initialValues(s, cfg.seed).map((v) => v + 0.1 * rng.normal())]));
      const params = new Map(specs.map((s) => [s.name, tf.variable(tf.tensor(values.get(s.name)!, s.shape))]));
      const b = 3;
      const d = featureDim(cfg.encoder);
      const x = Float32Array.from({ length: b * c.tileSize * c.tileSize * 3 }, () => rng.normal());
      const dy = Float32Array.from({ length: b * d }, () => rng.normal());
      const xT = tf.tensor4d(x, [b, c.tileSize, c.tileSize, 3]);
      const dyT = tf.tensor2d(dy, [b, d]);
      const feats = tf.tidy(() => encoderForward(params, cfg.encoder, xT));
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(encoderForward(params, cfg.encoder, xT), dyT)) as tf.Scalar, [...params.values()]);
      const tensors = [
        { name: 'x', shape: [b, c.tileSize, c.tileSize, 3], data: x },
        { name: 'dy', shape: [b, d], data: dy },
        { name: 'features', shape: [b, d], data: (await feats.data()) as Float32Array },
        ...specs.map((s) => ({ name: `param.${s.name}`, shape: s.shape, data: values.get(s.name)! })),
        ...(await Promise.all(specs.map(async (s) => ({ name: `grad.${s.name}`, shape: s.shape, data: (await grads[params.get(s.name)!.name].data()) as Float32Array })))),
      ];
      writeFileSync(join(folder, `${c.name}.safetensors`), writeSafetensors(tensors));
      tf.dispose([xT, dyT, feats, value, ...Object.values(grads), ...params.values()]);
      cases.push({ name: c.name, encoder: cfg.encoder, specs: specs.map((s) => ({ name: s.name, shape: s.shape })) });
    }
    writeFileSync(join(folder, 'cases.json'), JSON.stringify(cases));
    const res = await python(['-m', 'slidelab.check_models', folder], fileURLToPath(new URL('../torch', import.meta.url)));
    expect(res.code, res.out).toBe(0);
    const report = JSON.parse(res.out.trim().split('\n').at(-1)!) as Record<string, { features: number; worstGrad: number; worstGradLayer: string; params: number; gradTfjsVs64: number; gradTorchVs64: number }>;
    console.log(['torch-equivalence: encoders, normalised L1 of PyTorch against tfjs (cpu backend)', ...Object.entries(report).map(([name, r]) => `  ${name}: features ${r.features.toExponential(2)}, worst of ${r.params} parameter gradients ${r.worstGrad.toExponential(2)} (${r.worstGradLayer}); against float64: tfjs ${r.gradTfjsVs64.toExponential(2)}, PyTorch float32 ${r.gradTorchVs64.toExponential(2)}`)].join('\n'));
    for (const c of ENCODER_CASES) {
      expect(report[c.name].features, c.name).toBeLessThan(1e-5);
      // Under the tolerance; or, for an ill-conditioned model (GroupNorm over few values per group), the
      // lab's float32 gradients are as close to float64 as PyTorch's own float32 ones are.
      const r = report[c.name];
      expect(r.worstGrad < TOLERANCE.grad || r.gradTfjsVs64 <= 4 * r.gradTorchVs64 + 1e-7, `${c.name}: ${JSON.stringify(r)}`).toBe(true);
    }
  }, 120_000);
});

describe('a torchrun run comes back into the lab', () => {
  it.skipIf(!TORCH_OK)(named('checkpoint.safetensors + metrics.json import: weights, history and heatmaps; the lab re-validates it to the same probabilities'), async () => {
    const dir = join(work, 'run');
    const result = join(dir, 'result');
    // The main test above trained it; run it here when this test runs alone.
    if (!existsSync(join(result, 'metrics.json'))) {
      if (!existsSync(join(dir, 'config.json'))) await exportTorchRun(HASH, { out: dir });
      const r = await torchrun(dir, ['--steps', String(STEPS), '--out', 'result']);
      expect(r.code, r.out).toBe(0);
    }
    const { LabSession } = await import('../src/lab/session.ts');
    const { MemoryCheckpointStore } = await import('../src/lab/checkpoints.ts');
    const lab = new LabSession({
      makeRanks: (n) => inProcessRanks(n),
      setupMain: async () => {
        await tf.setBackend('cpu');
        return { backend: 'cpu', adapter: null };
      },
      store: new MemoryCheckpointStore(),
      referenceTiles: (spec) => new SyntheticTiles((spec as { seed: number }).seed, (spec as { slides: SlideEntry[] }).slides),
    });
    const files = ['checkpoint.safetensors', 'metrics.json'].map((name) => ({ name, blob: new Blob([readFileSync(join(result, name))]) }));
    // a file of another run is refused, naming it, and changes nothing
    expect(await lab.importRun([{ name: 'other.safetensors', blob: new Blob([writeSafetensors([{ name: 'enc.conv1.w', shape: [1], data: new Float32Array(1) }])]) }])).toBe(false);
    expect(lab.lastError?.message).toMatch(/other\.safetensors/);
    expect(await lab.importRun(files)).toBe(true);
    const t0 = Date.now();
    while (lab.state !== 'paused' && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
    expect(lab.state).toBe('paused');
    const metrics = JSON.parse(readFileSync(join(result, 'metrics.json'), 'utf8'));
    expect(lab.hash).toContain('data=synthetic');
    expect(lab.trainer!.engine.step).toBe(STEPS);
    expect(lab.history.steps.map((s) => s.loss)).toEqual(metrics.steps.map((s: { loss: number }) => s.loss));
    const imported = lab.history.evals.at(-1)!;
    expect(imported.slides.every((s) => s.attention.scores.length > 0)).toBe(true); // the heatmaps' data
    // Re-validated here, with the imported weights: the same probabilities and attention as torch's.
    await lab.evaluateNow();
    const here = lab.history.evals.at(-1)!;
    const probDiff = Math.max(...here.slides.map((s) => Math.abs(s.prob - imported.slides.find((x) => x.slideId === s.slideId)!.prob)));
    const attnDiff = Math.max(...here.slides.map((s) => normalizedL1(s.attention.scores, imported.slides.find((x) => x.slideId === s.slideId)!.attention.scores)));
    console.log(`torch -> lab round trip: ${here.slides.length} validation slides, P(positive) |diff| ${probDiff.toExponential(2)}, attention scores normalised L1 ${attnDiff.toExponential(2)}, AUC ${here.auc.toFixed(3)} (torch ${imported.auc.toFixed(3)})`);
    expect(probDiff).toBeLessThan(1e-4);
    expect(attnDiff).toBeLessThan(1e-4);
    await lab.stop();
  });
});

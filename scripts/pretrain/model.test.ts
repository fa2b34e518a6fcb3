// The pretrained encoder in the box (public/models/, made by npm run pretrain; docs/PRETRAINING.md):
// it loads through the lab's importer, its architecture is what its json says, its json's input
// normalisation is a valid encoder.mean/std, and its frozen features on a few demo-like tiles
// (the demo's texture, one with a planted lesion) are finite, not constant, and set the lesion apart.
import { openAsBlob, readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { inputNorm, parseConfig } from '../../src/core/config.ts';
import { NO_AUGMENT, preprocessTile } from '../../src/core/augment.ts';
import { encoderForward } from '../../src/core/models/encoder.ts';
import { createParams, disposeParams, writeParams } from '../../src/core/params.ts';
import { encoderSpecs } from '../../src/core/models/encoder.ts';
import { loadPretrained } from '../../src/core/pretrained.ts';
import { tf } from '../../src/core/tf.ts';
import { resampleRect } from '../../src/slide/resample.ts';
import { paintLesion, paintScene, randomBlob, rng } from '../../src/slide/testing/scene.ts';

const NAME = 'slidelab-simclr-r18w16';
const FILE = new URL(`../../public/models/${NAME}.safetensors`, import.meta.url);
const DOC = JSON.parse(readFileSync(new URL(`../../public/models/${NAME}.json`, import.meta.url), 'utf8'));
const TEXTURE = new URL('../../public/textures/ihc.png', import.meta.url);

/** Four 224-px tiles at 0.5 µm/px as the demo paints them, resized to `size` as the lab reads them: tissue, tissue, tissue with a lesion, tissue edge. */
function demoLikeTiles(size: number): Uint8Array {
  const png = PNG.sync.read(readFileSync(TEXTURE));
  const data = new Uint8Array(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = png.data[i * 4 + c];
  const texture = { width: png.width, height: png.height, data };
  const W = 896, H = 448, random = rng(11);
  const rgb = paintScene(W, H, [randomBlob(random, 448, 300, 420)], texture);
  paintLesion(rgb, W, H, 448 + 30, 224 + 30, 160, random);
  const at: [number, number][] = [[0, 224], [224, 224], [448, 224], [224, 0]];
  const out = new Uint8Array(at.length * size * size * 3);
  at.forEach(([x, y], n) => out.set(resampleRect(rgb, W, H, x, y, 224, 224, size), n * size * size * 3));
  return out;
}

describe(`the shipped pretrained encoder (${NAME})`, () => {
  it('loads through loadPretrained as its json says, with a valid normalisation, and gives useful frozen features', async () => {
    // The json's normalisation is a valid encoder.mean/std, and the lab config that uses it parses.
    const cfg = parseConfig({ tileSize: DOC.tileSize, encoder: { mean: DOC.input.mean, std: DOC.input.std } });
    const norm = inputNorm(cfg.encoder);
    expect(norm.mean).toHaveLength(3);
    expect(norm.std.every((s) => s > 0)).toBe(true);

    const p = await loadPretrained(await openAsBlob(FILE), `${NAME}.safetensors`, cfg);
    expect(p.family).toBe(DOC.family);
    expect(p.encoder).toMatchObject({ kind: DOC.architecture.kind, depth: DOC.architecture.depth, width: DOC.architecture.width, truncate: DOC.architecture.truncate, mean: DOC.input.mean, std: DOC.input.std });
    expect(p.params).toBe(DOC.architecture.parameters);
    expect(p.featureDim).toBe(DOC.architecture.featureDim);
    expect(p.report.unused).toEqual([]);
    expect(p.weights.every(Number.isFinite)).toBe(true);
    expect(readFileSync(FILE).length).toBeLessThan(4 * 2 ** 20); // a few MB in the repository

    // Frozen features of four demo-like tiles through the lab's encoder (cpu backend).
    await tf.setBackend('cpu');
    const S = cfg.tileSize, n = 4;
    const rgb = demoLikeTiles(S);
    const x = new Float32Array(n * S * S * 3);
    for (let k = 0; k < n; k++) preprocessTile(rgb.subarray(k * S * S * 3, (k + 1) * S * S * 3), S, NO_AUGMENT, norm, x, k * S * S * 3);
    const specs = encoderSpecs(p.encoder, S);
    const params = createParams(specs, cfg.seed, false);
    writeParams(specs, params, p.weights);
    const f = tf.tidy(() => encoderForward(params, p.encoder, tf.tensor4d(x, [n, S, S, 3])));
    const feats = (await f.array()) as number[][];
    f.dispose();
    disposeParams(params);
    expect(feats.flat().every(Number.isFinite)).toBe(true);
    const D = p.featureDim;
    const spread = Array.from({ length: D }, (_, d) => Math.max(...feats.map((r) => r[d])) - Math.min(...feats.map((r) => r[d])));
    expect(spread.filter((s) => s > 1e-4).length).toBeGreaterThan(D / 2); // not constant over tiles
    // The lesion tile (2) sits further from the tissue tiles (0, 1) than they sit from each other.
    const dist = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));
    expect(Math.min(dist(feats[2], feats[0]), dist(feats[2], feats[1]))).toBeGreaterThan(dist(feats[0], feats[1]));
  });
});

// scripts/slide.ts end to end: info and region on fixtures, one-line errors with non-zero exit.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures } from '../../scripts/make-fixtures.ts';
import { fromPath } from './node-open.ts';

const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/slide.ts', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

let dir = '';
const out = mkdtempSync(join(tmpdir(), 'slide-cli-'));
beforeAll(async () => {
  dir = await ensureFixtures();
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('slide CLI', () => {
  it('info --json: levels, mpp, associated images and tissue tiles', async () => {
    const [svs, ome] = await Promise.all([run('info', `${dir}/svs-rgb.svs`, '--json'), run('info', `${dir}/ome-subifd.ome.tiff`, '--json')]);
    expect(svs.code).toBe(0);
    const j = JSON.parse(svs.stdout);
    expect(j.mpp).toBe(0.499);
    expect(j.levels.map((l: { width: number }) => l.width)).toEqual([960, 240]);
    expect(j.levels[0]).toMatchObject({ tileWidth: 240, compression: 'JPEG (7)', photometric: 'RGB', downsample: 1 });
    expect(j.associated.map((a: { kind: string }) => a.kind)).toEqual(['thumbnail', 'label', 'macro']);
    expect(j.tiles.tissueTiles).toBeGreaterThan(0);
    expect(JSON.parse(ome.stdout).tiles).toMatchObject({ readLevel: 1, resample: false });
  });

  it('region writes that region as an RGB PNG', async () => {
    const png = join(out, 'r.png');
    const r = await run('region', `${dir}/svs-ycbcr.svs`, '--level', '0', '--x', '100', '--y', '120', '--w', '300', '--h', '200', '--out', png);
    expect(r.code).toBe(0);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([300, 200, 3]);
    const s = await fromPath(`${dir}/svs-ycbcr.svs`);
    expect(Buffer.from((await s.readRegion(0, 100, 120, 300, 200)).data).equals(data)).toBe(true);
    await s.close();
  });

  it('info and region on Aperio JPEG 2000 (33003 YCbCr, 33005 RGB)', async () => {
    const png = join(out, 'j2k.png');
    const [ycc, rgb] = await Promise.all([
      run('info', `${dir}/jp2k-ycbcr.svs`, '--json'),
      run('region', `${dir}/jp2k-rgb.svs`, '--level', '0', '--x', '200', '--y', '150', '--w', '300', '--h', '200', '--out', png),
    ]);
    expect(ycc.code).toBe(0);
    const j = JSON.parse(ycc.stdout); // the codec's own messages stay off stdout
    expect(j.levels[0]).toMatchObject({ compression: 'JPEG 2000 (33003)', photometric: 'YCbCr', tileWidth: 256 });
    expect(j.tiles.tissueTiles).toBeGreaterThan(0);
    expect(rgb.code).toBe(0);
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const s = await fromPath(`${dir}/jp2k-rgb.svs`);
    expect(Buffer.from((await s.readRegion(0, 200, 150, 300, 200)).data).equals(data)).toBe(true);
    await s.close();
  });

  const failures: [string, string[], RegExp][] = [
    ['missing file', ['info', 'nope.svs'], /^slide: nope\.svs: no such file$/],
    ['non-TIFF', ['info', 'not-a-tiff.png'], /not a TIFF file/],
    ['truncated IFDs', ['info', 'truncated.tiff'], /truncated/],
    ['truncated tile data', ['info', 'truncated-data.svs'], /truncated file: tile \d+ at bytes/],
    ['corrupt tile', ['info', 'corrupt-tile.tiff'], /corrupt tile data/],
    ['unsupported compression', ['info', 'lerc.tiff'], /unsupported compression LERC \(34887\)/],
    ['corrupt JPEG 2000 tile', ['info', 'jp2k-corrupt.svs'], /corrupt tile data \(no JPEG 2000 codestream header\)/],
    ['absurd dimensions', ['info', 'absurd.tiff'], /absurd dimensions/],
    ['absurd region', ['region', 'svs-rgb.svs', '--x', '0', '--y', '0', '--w', '99999', '--h', '99999', '--out', '/dev/null'], /region 99999x99999/],
  ];
  it.concurrent.each(failures)('%s: one line naming the file, non-zero exit', async (_, args, reason) => {
    const fileArgs = args.map((a, i) => (i === 1 && a !== 'nope.svs' ? `${dir}/${a}` : a));
    const r = await run(...fileArgs);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(reason);
    expect(lines[0]).toContain(fileArgs[1]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

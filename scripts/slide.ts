// Slide command line, used by tests, benchmarks and anyone scripting the lab.
//   npm run slide -- info <file> [--json] [--mpp X] [--tile-size 224] [--target-mpp 0.5] [--min-tissue 0.25]
//   npm run slide -- region <file> --level L --x X --y Y --w W --h H --out out.png
// Errors print one line, "slide: <file>: <reason>", and exit 1 (2 for usage errors).
import sharp from 'sharp';
import { SlideError } from '../src/slide/errors.ts';
import { fromPath } from '../src/slide/node-open.ts';
import type { SlideSource } from '../src/slide/source.ts';
import { DEFAULT_MIN_TISSUE, DEFAULT_MPP, DEFAULT_TILE_SIZE, planTileGrid } from '../src/slide/tiles.ts';
import { detectTissue } from '../src/slide/tissue.ts';
import { numberOf, parseCli, setUsage, usageExit } from '../tools/cli.ts';

const USAGE = `usage: slide info <file> [--json] [--mpp X] [--tile-size N] [--target-mpp X] [--min-tissue F]
       slide region <file> --level L --x X --y Y --w W --h H --out out.png`;

const OPTIONS = {
  json: { type: 'boolean' }, mpp: { type: 'string' }, 'tile-size': { type: 'string' }, 'target-mpp': { type: 'string' }, 'min-tissue': { type: 'string' },
  level: { type: 'string' }, x: { type: 'string' }, y: { type: 'string' }, w: { type: 'string' }, h: { type: 'string' }, out: { type: 'string' },
} as const;
type Flags = Partial<Record<keyof typeof OPTIONS, string | boolean>>;

/** A number flag; usage error (exit 2) when malformed, or when required and absent. */
function numberFlag(flags: Flags, name: keyof typeof OPTIONS, fallback?: number, integer = false): number {
  const v = flags[name];
  if (v === undefined && fallback === undefined) usageExit(`--${name} is required`);
  return numberOf(v === undefined ? undefined : String(v), name, fallback ?? 0, integer);
}

async function info(source: SlideSource, flags: Flags): Promise<void> {
  const tileSize = numberFlag(flags, 'tile-size', DEFAULT_TILE_SIZE, true);
  const mpp = numberFlag(flags, 'target-mpp', DEFAULT_MPP);
  const minTissue = numberFlag(flags, 'min-tissue', DEFAULT_MIN_TISSUE);
  const t0 = performance.now();
  const mask = await detectTissue(source); // reads pixels: also catches corrupt tiles
  const grid = source.mpp === null ? null : planTileGrid(source.levels, source.mpp, mask, { tileSize, mpp, minTissue });
  const ms = performance.now() - t0;
  const report = {
    file: source.name,
    byteOrder: source.littleEndian ? 'little-endian' : 'big-endian',
    bigTiff: source.bigTiff,
    mpp: source.mpp,
    mppSource: source.mppSource,
    levels: source.levels.map((l) => ({
      level: l.index, width: l.width, height: l.height, tileWidth: l.tileWidth, tileHeight: l.tileHeight, tiled: l.tiled,
      compression: l.compressionName, photometric: l.photometricName, downsample: Number(l.downsample.toFixed(4)),
    })),
    associated: source.associated.map((a) => ({ kind: a.kind, width: a.width, height: a.height, compression: a.compressionName })),
    tissue: { fraction: Number(mask.fraction.toFixed(4)), threshold: mask.threshold, maskWidth: mask.width, maskHeight: mask.height },
    tiles: grid
      ? { tileSize, mpp, minTissue, tissueTiles: grid.tiles.length, gridCols: grid.cols, gridRows: grid.rows, tile0: grid.tile0, readLevel: grid.level, resample: grid.resample }
      : { tileSize, mpp, minTissue, tissueTiles: null, note: 'resolution unknown: pass --mpp to set µm per pixel' },
    planMs: Math.round(ms),
  };
  if (flags.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`${report.file}: ${report.byteOrder}${report.bigTiff ? ' BigTIFF' : ''}, ${source.mpp === null ? 'µm/px unknown' : `${source.mpp} µm/px (${source.mppSource})`}`);
  for (const l of report.levels) console.log(`  level ${l.level}: ${l.width}x${l.height} ${l.tiled ? 'tiles' : 'strips'} ${l.tileWidth}x${l.tileHeight} ${l.compression} ${l.photometric} downsample ${l.downsample}`);
  for (const a of report.associated) console.log(`  ${a.kind}: ${a.width}x${a.height} ${a.compression}`);
  console.log(`  tissue ${(report.tissue.fraction * 100).toFixed(1)}% of the slide; ${grid ? `${grid.tiles.length} tissue tiles of ${tileSize} px at ${mpp} µm/px (grid ${grid.cols}x${grid.rows}, read from level ${grid.level}${grid.resample ? ', resampled' : ''})` : 'tissue tiles unknown: pass --mpp'}`);
}

async function region(source: SlideSource, flags: Flags): Promise<void> {
  const level = numberFlag(flags, 'level', 0, true);
  const [x, y, w, h] = (['x', 'y', 'w', 'h'] as const).map((k) => numberFlag(flags, k, undefined, true));
  const out = flags.out;
  if (typeof out !== 'string') usageExit('--out is required');
  const r = await source.readRegion(level, x, y, w, h);
  await sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } }).png().toFile(out);
  console.log(`${out}: ${r.width}x${r.height} RGB from level ${level} of ${source.name}`);
}

async function main(argv: string[]): Promise<number> {
  let file = '';
  const { values: flags, positionals } = parseCli(argv, OPTIONS, USAGE);
  setUsage(USAGE);
  const [command, path] = positionals;
  if (!command || !['info', 'region'].includes(command)) usageExit(command ? `unknown command '${command}'` : 'give a command: info or region');
  if (!path) usageExit('give a slide file');
  try {
    file = path;
    const mpp = flags.mpp !== undefined ? numberFlag(flags, 'mpp') : undefined;
    const source = await fromPath(path, { mpp });
    try {
      await (command === 'info' ? info(source, flags) : region(source, flags));
    } finally {
      await source.close();
    }
    return 0;
  } catch (e) {
    const reason = e instanceof SlideError ? e.reason : (e instanceof Error ? e.message : String(e)).split('\n')[0];
    console.error(`slide: ${e instanceof SlideError ? e.file : file || '-'}: ${reason}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));

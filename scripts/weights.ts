// Pretrained weight files from the command line: what a file holds and what the lab makes of it.
//   npm run weights -- info <file> [--tile-size 224] [--micro-batch 8] [--heads N] [--truncate] [--json]
//   npm run weights -- export <file> --out <file.safetensors> [--tile-size N] [--heads N] [--truncate]
// info lists the detected family and architecture, parameters, feature size, unused tensors and a
// memory estimate; export re-writes the weights as F32 safetensors in the family's own names
// (the round trip the lab's Export button does). Errors: one line "weights: <file>: <reason>", exit 1.
import { openAsBlob } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseConfig } from '../src/core/config.ts';
import { describePretrained, exportPretrained, loadPretrained } from '../src/core/pretrained.ts';
import { mib } from '../src/core/memory-estimate.ts';
import { writeSafetensors } from '../src/core/weights/index.ts';
import { numberOf, parseCli, setUsage, usageExit } from '../tools/cli.ts';

const USAGE = `usage: npm run weights -- info <file> [--tile-size N] [--micro-batch N] [--heads N] [--truncate] [--json]
       npm run weights -- export <file> --out <file.safetensors> [--tile-size N] [--heads N] [--truncate]
Reads .safetensors (F32/F16/BF16) and torch.save zip checkpoints (.bin/.pt/.pth) without executing anything.
--heads: a ViT's attention heads (shapes cannot tell; default dim / 64). --truncate: a ResNet cut after layer3.`;

const { values, positionals } = parseCli(process.argv.slice(2), {
  'tile-size': { type: 'string' }, 'micro-batch': { type: 'string' }, heads: { type: 'string' }, truncate: { type: 'boolean' }, json: { type: 'boolean' }, out: { type: 'string' },
}, USAGE);
setUsage(USAGE);
const [command, path] = positionals;
if (command !== 'info' && command !== 'export') usageExit(command ? `unknown command '${command}'` : 'give a command: info or export');
if (!path) usageExit('give a weight file');
if (command === 'export' && !values.out) usageExit('export needs --out <file.safetensors>');

const tileSize = numberOf(values['tile-size'], 'tile-size', 224, true);
const heads = values.heads === undefined ? undefined : numberOf(values.heads, 'heads', 0, true);
const cfgOf = (dim?: number) => parseConfig({
  tileSize, microBatch: numberOf(values['micro-batch'], 'micro-batch', 8, true),
  encoder: heads && dim ? { kind: 'vit', dim, heads } : values.truncate ? { kind: 'tv-resnet', truncate: true } : {},
});

try {
  let p = await loadPretrained(await openAsBlob(path), basename(path), cfgOf());
  if (heads && p.encoder.kind === 'vit') p = await loadPretrained(await openAsBlob(path), basename(path), cfgOf(p.encoder.dim));
  if (command === 'info') {
    if (values.json) {
      console.log(JSON.stringify({ file: p.file, family: p.family, encoder: p.encoder, tileSize: p.tileSize, params: p.params, featureDim: p.featureDim, report: p.report, memory: p.memory }, null, 1));
    } else {
      console.log(describePretrained(p));
      for (const n of p.report.notes) console.log(`  note: ${n}`);
      if (p.report.unused.length) console.log(`  unused (${p.report.unused.length}): ${p.report.unused.slice(0, 12).join(', ')}${p.report.unused.length > 12 ? ', ...' : ''}`);
      const m = p.memory;
      console.log(`  memory estimate per rank at ${tileSize} px: parameters + AdamW ${mib(m.parameterBytes)}, activations ${mib(m.activationBytes)} per micro-batch, largest tensor ${mib(m.largestTensorBytes)}`);
    }
  } else {
    const bytes = writeSafetensors(exportPretrained(p.family, p.encoder, p.tileSize, p.weights), { format: 'pt', 'slide-lab.family': p.family });
    writeFileSync(values.out!, bytes);
    console.log(`wrote ${values.out} (${p.family}, ${p.params} parameters, ${mib(bytes.length)})`);
  }
} catch (e) {
  console.error(`weights: ${(e as Error).message}`);
  process.exit(1);
}

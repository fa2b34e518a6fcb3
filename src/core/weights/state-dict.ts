// What every weight-file reader returns, and opening a file by its first bytes. The readers find
// the state dict inside a checkpoint and strip shared name prefixes (unwrap.ts) before this.

import { readRange } from './blob-range.ts';
import { WeightFileError, guard } from './errors.ts';
import { openSafetensors } from './safetensors.ts';
import { openTorchZip, startsLikePickle, startsLikeZip } from './torch-zip.ts';

export type { TensorEntry, WeightFile } from './types.ts';
import type { WeightFile } from './types.ts';

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');

/**
 * Opens a safetensors file or a torch.save checkpoint, told apart by their first bytes (a zip's
 * 'PK\x03\x04'; safetensors' JSON header starting '{' at byte 8; a pickle's 0x80 for the legacy
 * torch format, which is refused with advice), never by the file's extension.
 */
export function openWeightFile(blob: Blob, file: string): Promise<WeightFile> {
  return guard(file, async () => {
    // head: the first bytes, enough to tell the formats apart
    const head = await readRange(blob, file, 0, Math.min(blob.size, 16), 'the first bytes');
    if (startsLikeZip(head)) return openTorchZip(blob, file);
    // before the pickle test: a safetensors header length can start with the byte 0x80
    if (head.length > 8 && head[8] === 0x7b) return openSafetensors(blob, file);
    if (startsLikePickle(head)) return openTorchZip(blob, file); // it says why it cannot read a pickle
    throw new WeightFileError(
      file,
      `not a weight file this reader knows: neither safetensors ('{' at byte 8) nor a torch.save zip ('PK\\x03\\x04'); it starts ${hex(head) || '(empty)'}`,
    );
  });
}

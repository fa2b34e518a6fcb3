// Reading and writing model weight files: safetensors and torch.save checkpoints, streamed from a Blob.

export { WeightFileError } from './errors.ts';
export { type TensorEntry, type WeightFile, openWeightFile } from './state-dict.ts';
export { MAX_HEADER_BYTES, openSafetensors, writeSafetensors } from './safetensors.ts';
export { openTorchZip } from './torch-zip.ts';
export { SUPPORTED_DTYPES } from './dtypes.ts';

// Public, browser-safe API of the slide module (Node adds node-open.ts: fromPath).
export { SlideError, isAbortError, type SlideErrorCode } from './errors.ts';
export { blobByteSource, UrlByteSource, type ByteSource } from './byte-source.ts';
export { fromBlob, fromUrl, openSlide, type AssociatedImage, type OpenOptions, type SlideLevel, type SlideSource, type Region, type ReadOptions } from './source.ts';
export { createJsDecoder, type JsDecoderOptions, type RawTile, type TileDecoder } from './decode-js.ts';
export { createNativeDecoder, nativeDecodeAvailable, rebuildJpeg } from './decode-native.ts';
export { detectTissue, tissueMaskOf, type TissueMask, type TissueOptions } from './tissue.ts';
export { planSlide, planTileGrid, readTile, tileRect, DEFAULT_MIN_TISSUE, DEFAULT_MPP, DEFAULT_TILE_SIZE, type TileGrid, type TileRect, type SlidePlan } from './tiles.ts';
export { parseManifest, formatIssues, openDataset, type Manifest, type ManifestRow, type ManifestIssue, type DatasetReport } from './manifest.ts';
export type { AssociatedKind, MppSource } from './metadata.ts';

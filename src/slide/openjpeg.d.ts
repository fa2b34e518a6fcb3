// Types for @cornerstonejs/codec-openjpeg (an Emscripten build of OpenJPEG that ships no types):
// only what decode-j2k.ts and the fixture encoder use.

declare module '@cornerstonejs/codec-openjpeg/wasmjs' {
  export interface OpenJpegFrameInfo {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned: boolean;
    isUsingColorTransform?: boolean;
  }
  export interface OpenJpegDecoder {
    getEncodedBuffer(length: number): Uint8Array;
    decode(): void;
    getDecodedBuffer(): Uint8ClampedArray;
    getFrameInfo(): OpenJpegFrameInfo;
    getColorSpace(): number;
    getIsReversible(): boolean;
    delete(): void;
  }
  export interface OpenJpegEncoder {
    getDecodedBuffer(frame: OpenJpegFrameInfo): Uint8Array;
    setQuality(lossless: boolean, layers: number): void;
    setCompressionRatio(layer: number, ratio: number): void;
    setDecompositions(n: number): void;
    encode(): void;
    getEncodedBuffer(): Uint8Array;
    delete(): void;
  }
  export interface OpenJpegModule {
    J2KDecoder: new () => OpenJpegDecoder;
    J2KEncoder: new () => OpenJpegEncoder;
  }
  export interface OpenJpegModuleOptions {
    locateFile?: (path: string, prefix: string) => string;
    print?: (text: string) => void;
    printErr?: (text: string) => void;
  }
  const factory: (options?: OpenJpegModuleOptions) => Promise<OpenJpegModule>;
  export default factory;
}

declare module '@cornerstonejs/codec-openjpeg/wasm?url' {
  const url: string;
  export default url;
}

declare module '@jsquash/webp/codec/dec/webp_dec.wasm?url' {
  const url: string;
  export default url;
}

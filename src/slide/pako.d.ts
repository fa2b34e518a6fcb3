// Types for pako (ships none): only the streaming Inflate that decompress.ts uses and the
// streaming Deflate that the test bombs (testing/bombs.ts) are made with.

declare module 'pako' {
  export class Inflate {
    constructor(options?: { chunkSize?: number; raw?: boolean; windowBits?: number });
    /** Feeds input; `true` marks its end (Z_FINISH). Output arrives through onData, then onEnd. */
    push(data: Uint8Array | ArrayBuffer, flushMode?: boolean | number): boolean;
    onData(chunk: Uint8Array): void;
    onEnd(status: number): void;
    /** The joined output after a successful end (default onData/onEnd). */
    result: Uint8Array | undefined;
    /** zlib status of the end (0 on success). */
    err: number;
    msg: string;
    chunks: Uint8Array[];
  }
  export class Deflate {
    constructor(options?: { level?: number; chunkSize?: number });
    /** Feeds input; `true` marks its end. */
    push(data: Uint8Array, flushMode?: boolean | number): boolean;
    result: Uint8Array;
    err: number;
    msg: string;
  }
}

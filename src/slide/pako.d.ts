// Types for pako (ships none): only the streaming Inflate that decompress.ts uses.

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
}

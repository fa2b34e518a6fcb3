// Web Worker of the browser decode benchmark: decodes the tile jobs bench/lib/decode-bench.ts hands
// it (native path: createImageBitmap on OffscreenCanvas; JS path: geotiff) and transfers the RGB back.
import { decodeWorker, type DecodeJob } from '../lib/decode-bench.ts';

interface Scope { onmessage: ((e: MessageEvent<DecodeJob>) => void) | null; postMessage(m: unknown, transfer: Transferable[]): void }
const scope = self as unknown as Scope;
const handle = decodeWorker((reply, transfer) => scope.postMessage(reply, transfer ?? []));
scope.onmessage = (e) => void handle(e.data);

// Node decode-benchmark worker (worker_threads): decodes the tile jobs bench/lib/decode-bench.ts
// hands it and transfers the RGB back.
import { parentPort } from 'node:worker_threads';
import { decodeWorker, type DecodeJob } from '../lib/decode-bench.ts';

if (!parentPort) throw new Error('decode-bench.node.ts must run as a worker_threads worker');
const port = parentPort;
const handle = decodeWorker((reply, transfer) => port.postMessage(reply, transfer ?? []));
port.on('message', (job: DecodeJob) => void handle(job));

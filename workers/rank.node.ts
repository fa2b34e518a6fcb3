// Node rank worker (worker_threads): the same Rank over comlink's node adapter.
import { parentPort } from 'node:worker_threads';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Rank } from '../src/core/rank.ts';
import { exposeRank } from '../src/transport/expose.ts';
import { nodeRuntime } from '../src/runtime/node.ts';
import { deviceLost, destroyDeviceForTest } from '../src/runtime/webgpu.ts';

if (!parentPort) throw new Error('rank.node.ts must run as a worker_threads worker');
exposeRank(new Rank(nodeRuntime), nodeEndpoint(parentPort), { deviceLost, destroyDevice: destroyDeviceForTest, exit: (code) => process.exit(code) });

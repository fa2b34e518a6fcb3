// Browser rank worker: one encoder replica on this worker's own WebGPU device.
import { Rank } from '../src/core/rank.ts';
import { exposeRank } from '../src/transport/expose.ts';
import { browserRuntime } from '../src/runtime/browser.ts';
import { deviceLost, destroyDeviceForTest } from '../src/runtime/webgpu.ts';

exposeRank(new Rank(browserRuntime), undefined, { deviceLost, destroyDevice: destroyDeviceForTest });

// Bootstrap for the Node rank worker: registers tsx's TypeScript loader in this thread, then
// loads the TypeScript entry. (worker_threads does not accept --import in execArgv.)
import { register } from 'tsx/esm/api';

// geotiff imports the `web-worker` package, which, inside any worker_threads thread without a
// global Worker, assumes it was spawned by itself and crashes. Rank threads never start
// geotiff's decoder pool, so a Worker that refuses is enough.
globalThis.Worker ??= class {
  constructor() {
    throw new Error('nested workers are not available inside a rank worker');
  }
};

register();
await import('./rank.node.ts');

// Bootstrap for the Node decode-benchmark worker (bench/run.ts --only decode): registers tsx's
// TypeScript loader in this thread, then loads the TypeScript entry, as workers/rank.node.mjs does.
import { register } from 'tsx/esm/api';

// geotiff imports the `web-worker` package, which crashes inside a worker_threads thread without
// a global Worker (see workers/rank.node.mjs). This worker decodes in its own thread and starts none.
globalThis.Worker ??= class {
  constructor() {
    throw new Error('nested workers are not available inside a decode-benchmark worker');
  }
};

register();
await import('./decode-bench.node.ts');

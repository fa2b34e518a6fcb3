// Bootstrap for the Node rank worker: registers tsx's TypeScript loader in this thread, then
// loads the TypeScript entry. (worker_threads does not accept --import in execArgv.)
import { register } from 'tsx/esm/api';

register();
await import('./rank.node.ts');

// Test helper: what a LabSession needs in a Node test. In-process ranks and the main context on
// the cpu backend, checkpoints in memory, synthetic reference tiles; `over` replaces any of it.
import { tf } from '../../core/tf.ts';
import type { RankApi } from '../../core/protocol.ts';
import { inProcessRanks, syntheticOnly } from '../../transport/in-process.ts';
import { MemoryCheckpointStore } from '../checkpoints.ts';
import type { SessionDeps } from '../session-types.ts';

/** `wrap` sees each new set of ranks (to wrap or watch them). */
export function testDeps(over: Partial<SessionDeps> = {}, wrap: (r: RankApi[]) => RankApi[] = (r) => r): SessionDeps {
  return {
    makeRanks: (n) => wrap(inProcessRanks(n)),
    setupMain: async () => {
      await tf.setBackend('cpu');
      return { backend: 'cpu', adapter: null };
    },
    store: new MemoryCheckpointStore(),
    referenceTiles: syntheticOnly,
    ...over,
  };
}

/** Resolves once `cond()` holds (polled every 10 ms); rejects after `ms`. */
export async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

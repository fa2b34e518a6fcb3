import { describe, expect, it } from 'vitest';
import { delegateRank, RANK_METHODS, rankFrom, type RankApi } from '../core/protocol.ts';
import { guardRank, RankError } from './guard.ts';

/** A rank whose every call answers its method name, except those overridden. */
const fake = (over: Partial<RankApi> = {}): RankApi => ({ ...rankFrom(async (method) => method), ...over });

describe('rank wrappers (one list of methods)', () => {
  it('wrap exactly the methods of RANK_METHODS, and keep terminate', async () => {
    let terminated = 0;
    const guarded = guardRank(Object.assign(fake(), { terminate: () => void terminated++ }), 0);
    expect(Object.keys(guarded).sort()).toEqual([...RANK_METHODS, 'terminate'].sort());
    for (const m of RANK_METHODS) expect(await (guarded[m] as () => Promise<unknown>)()).toBe(m);
    guarded.terminate?.();
    expect(terminated).toBe(1);
    expect(Object.keys(delegateRank(fake())).sort()).toEqual([...RANK_METHODS].sort());
  });

  it('say where a call failed and keep the rank\'s own error as the cause', async () => {
    const cause = new RangeError('out of memory');
    const guarded = guardRank(fake({ encode: () => Promise.reject(cause) }), 2);
    const e = await guarded.encode({ step: 0, slideId: 's', slots: new Int32Array(0), tileIndices: new Int32Array(0), train: true }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RankError);
    expect((e as RankError).message).toBe('rank 2, encode: out of memory');
    expect((e as RankError).cause).toBe(cause);
  });

  it('fail a call that does not answer within the timeout', async () => {
    const guarded = guardRank(fake({ memory: () => new Promise(() => undefined) }), 1, { timeoutMs: 20 });
    await expect(guarded.memory()).rejects.toThrow(/rank 1, memory: no answer within 0 s/);
  });
});

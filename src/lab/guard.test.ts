import { describe, expect, it } from 'vitest';
import { delegateRank, RANK_METHODS, rankFrom, type RankApi, type RankInit } from '../core/protocol.ts';
import { parseConfig } from '../core/config.ts';
import { DEVICE_LOST_ERROR } from '../core/faults.ts';
import { WorkerDied, workerRank, type RankLink } from '../transport/rank-wrapper.ts';
import { DeviceLost, guardRank, RankCrashed, RankError } from './guard.ts';

/** A rank whose every call answers its method name, except those overridden. */
const fake = (over: Partial<RankApi> = {}): RankApi => ({ ...rankFrom(async (method) => method), ...over });

describe('rank wrappers (one list of methods)', () => {
  it('wrap exactly the methods of RANK_METHODS, and keep terminate', async () => {
    let terminated = 0;
    const guarded = guardRank(Object.assign(fake(), { terminate: () => void terminated++ }), 0);
    expect(Object.keys(guarded).sort()).toEqual([...RANK_METHODS, 'settled', 'terminate'].sort());
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

  it('fail the calls of a worker that died as RankCrashed at once, and a lost device as DeviceLost', async () => {
    let die!: (e: WorkerDied) => void;
    const link: RankLink = { send: () => new Promise(() => undefined), died: new Promise<never>((_, reject) => (die = reject)), terminate: () => undefined };
    const rank = workerRank(3, () => link);
    const call = rank.backward({ grad: new Float32Array(2) }).catch((x: unknown) => x);
    die(new WorkerDied('rank worker 3 exited (code 1)'));
    const e = await call;
    expect(e).toBeInstanceOf(RankCrashed);
    expect((e as RankCrashed).message).toBe("rank 3, backward: the rank's worker died: rank worker 3 exited (code 1)");
    const lost = Object.assign(new Error('device lost (destroyed)'), { name: DEVICE_LOST_ERROR });
    const onGpu = guardRank(fake({ encode: () => Promise.reject(lost) }), 1);
    const d = await onGpu.encode({ step: 0, slideId: 's', slots: new Int32Array(0), tileIndices: new Int32Array(0), train: true }).catch((x: unknown) => x);
    expect(d).toBeInstanceOf(DeviceLost);
    expect((d as DeviceLost).cause).toBe(lost);
  });

  it('restart a worker rank as its last init asked, without its weights or test fault', async () => {
    const inits: RankInit[] = [];
    let opened = 0;
    const open = (): RankLink => {
      opened += 1;
      return { send: async (method, arg) => (method === 'init' ? (inits.push(arg as RankInit), { rank: (arg as RankInit).rank }) : method), died: new Promise<never>(() => undefined), terminate: () => undefined };
    };
    const rank = workerRank(1, open);
    const config = parseConfig({});
    const tiles = { kind: 'synthetic' as const, seed: 1, slides: [] };
    await rank.init({ rank: 1, ranks: 2, config, tiles, weights: new Float32Array(3), testFault: { kind: 'exit', call: 'apply', nth: 1 } });
    await rank.restart!();
    expect(opened).toBe(2);
    expect(inits[1]).toEqual({ rank: 1, ranks: 2, config, tiles });
  });

  it('fail a call that does not answer within the timeout', async () => {
    const guarded = guardRank(fake({ memory: () => new Promise(() => undefined) }), 1, { timeoutMs: 20 });
    await expect(guarded.memory()).rejects.toThrow(/rank 1, memory: no answer within 0 s/);
  });
});

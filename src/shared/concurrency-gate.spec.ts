import { describe, expect, it } from 'vitest';
import { ConcurrencyGate, currentPriority, inBackground } from './concurrency-gate';

/** A job that runs until `finish()`; `order` records when jobs start. */
function controlled(order: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    work: async () => {
      order.push(name);
      await done;
    },
    finish: () => finish(),
  };
}

/** Lets queued promise callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('ConcurrencyGate', () => {
  it('should run at most `limit` jobs at once and start the next when one ends', async () => {
    const gate = new ConcurrencyGate(2);
    const order: string[] = [];
    const jobs = ['a', 'b', 'c', 'd'].map((n) => controlled(order, n));
    const runs = jobs.map((j, i) => gate.run({ key: `k${i}` }, j.work));
    await settle();
    expect(order).toEqual(['a', 'b']);
    expect([gate.running, gate.waiting]).toEqual([2, 2]);
    jobs[0]!.finish();
    await settle();
    expect(order).toEqual(['a', 'b', 'c']);
    expect([gate.running, gate.waiting]).toEqual([2, 1]);
    for (const j of jobs) j.finish();
    await Promise.all(runs);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect([gate.running, gate.waiting]).toEqual([0, 0]);
  });

  it('should serve interactive jobs before background ones queued earlier', async () => {
    const gate = new ConcurrencyGate(1);
    const order: string[] = [];
    const first = controlled(order, 'first');
    const runs = [gate.run({ key: 'x' }, first.work)];
    const later = ['bg1', 'bg2', 'int'].map((n) => controlled(order, n));
    runs.push(gate.run({ key: 'c1', priority: 'background' }, later[0]!.work));
    runs.push(gate.run({ key: 'c2', priority: 'background' }, later[1]!.work));
    runs.push(gate.run({ key: 'c3', priority: 'interactive' }, later[2]!.work));
    for (const j of [first, ...later]) j.finish();
    await Promise.all(runs);
    expect(order).toEqual(['first', 'int', 'bg1', 'bg2']);
  });

  it('should let keys take turns so one key with many jobs does not starve another', async () => {
    const gate = new ConcurrencyGate(1);
    const order: string[] = [];
    const blocker = controlled(order, 'blocker');
    const runs = [gate.run({ key: 'z' }, blocker.work)];
    const names = ['a1', 'a2', 'a3', 'b1', 'b2', 'c1'];
    const jobs = names.map((n) => controlled(order, n));
    jobs.forEach((j, i) => {
      runs.push(gate.run({ key: names[i]![0]!, priority: 'background' }, j.work));
    });
    for (const j of [blocker, ...jobs]) j.finish();
    await Promise.all(runs);
    expect(order).toEqual(['blocker', 'a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });

  it('should drop a waiting job from the line when its signal aborts', async () => {
    const gate = new ConcurrencyGate(1);
    const order: string[] = [];
    const blocker = controlled(order, 'blocker');
    const blocking = gate.run({ key: 'a' }, blocker.work);
    const controller = new AbortController();
    const never = controlled(order, 'aborted');
    const aborted = gate.run({ key: 'b', signal: controller.signal }, never.work);
    const next = controlled(order, 'next');
    const after = gate.run({ key: 'c' }, next.work);
    controller.abort(new Error('caller gone'));
    await expect(aborted).rejects.toThrow('caller gone');
    expect(gate.waiting).toBe(1);
    blocker.finish();
    next.finish();
    await Promise.all([blocking, after]);
    expect(order).toEqual(['blocker', 'next']);
  });

  it('should free the slot when a job fails', async () => {
    const gate = new ConcurrencyGate(1);
    await expect(gate.run({ key: 'a' }, () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    expect(await gate.run({ key: 'a' }, () => Promise.resolve('ok'))).toBe('ok');
    expect(gate.running).toBe(0);
  });

  it('should report queueing only for jobs that wait', async () => {
    const gate = new ConcurrencyGate(1);
    const queued: string[] = [];
    const order: string[] = [];
    const a = controlled(order, 'a');
    const b = controlled(order, 'b');
    const runs = [
      gate.run({ key: 'k', onQueued: () => queued.push('a') }, a.work),
      gate.run({ key: 'k', onQueued: () => queued.push('b') }, b.work),
    ];
    expect(queued).toEqual(['b']);
    a.finish();
    b.finish();
    await Promise.all(runs);
  });

  it('should refuse a limit below one', () => {
    expect(() => new ConcurrencyGate(0)).toThrow(RangeError);
  });
});

describe('inBackground', () => {
  it('should mark the work it runs, and what that work awaits, as background', async () => {
    expect(currentPriority()).toBe('interactive');
    const seen = await inBackground(async () => {
      await settle();
      return currentPriority();
    });
    expect(seen).toBe('background');
    expect(currentPriority()).toBe('interactive');
  });
});

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventJournalContract } from '../../../test/contract/event-journal.contract';
import { FixedClock } from '../../../test/support/fakes/fixed-clock';
import type { LockKey } from '../../shared/domain';
import { InMemoryDistributedLock } from '../lock/in-memory-distributed-lock.adapter';
import { FsEventJournal } from './fs-event-journal.adapter';

/** The in-memory lock, counting the write locks taken (one per batch the journal writes). */
class CountingLock extends InMemoryDistributedLock {
  writeLocks = 0;

  override withWriteLock<T>(
    key: LockKey,
    work: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    this.writeLocks += 1;
    return super.withWriteLock(key, work, signal);
  }
}

/** Journals on one directory and one lock, as replicas share DIR and etcd. */
function journalsOn(dir: string, clock: FixedClock) {
  const lock = new CountingLock();
  const opened: FsEventJournal[] = [];
  return {
    lock,
    opened,
    open: async (size = 100): Promise<FsEventJournal> => {
      const j = new FsEventJournal({ dir, size, pollMs: 20 }, lock, clock);
      await j.onModuleInit();
      opened.push(j);
      return j;
    },
  };
}

eventJournalContract('FsEventJournal', () => {
  const root = mkdtempSync(join(tmpdir(), 'cm-journal-'));
  const clock = new FixedClock(new Date('2026-05-01T10:00:00Z'));
  const { opened, open } = journalsOn(join(root, 'events'), clock);
  return Promise.resolve({
    clock,
    open,
    cleanup: () => {
      for (const j of opened) j.onModuleDestroy();
      rmSync(root, { recursive: true, force: true });
      return Promise.resolve();
    },
  });
});

describe('FsEventJournal', () => {
  let root: string;
  let dir: string;
  let journals: ReturnType<typeof journalsOn>;
  const journal = (size?: number) => journals.open(size);

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cm-journal-'));
    dir = join(root, 'events');
    journals = journalsOn(dir, new FixedClock(new Date('2026-05-01T10:00:00Z')));
  });

  afterEach(() => {
    for (const j of journals.opened) j.onModuleDestroy();
    rmSync(root, { recursive: true, force: true });
  });

  it('should never reject, and lose only the event, when the journal cannot be written', async () => {
    const j = await journal();
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'not a directory');
    await expect(j.publish('challenge.created', { challengeId: 'c' })).resolves.toBeUndefined();
  });

  it('should skip an id a crashed append left behind before it moved the head', async () => {
    const j = await journal();
    await j.publish('challenge.created', { challengeId: 'c' });
    writeFileSync(join(dir, 'log', `${'2'.padStart(20, '0')}.json`), '');
    const next = await j.publish('challenge.deleted', { challengeId: 'c' });
    expect(next?.id).toBe(3);
    expect((await j.readAfter(0, {})).events.map((e) => e.type)).toEqual([
      'challenge.created',
      'challenge.deleted',
    ]);
  });

  it('should keep one file per event, removing those beyond its size', async () => {
    const j = await journal(3);
    for (let i = 0; i < 5; i++) await j.publish('challenge.updated', { challengeId: `c${i}` });
    expect(readdirSync(join(dir, 'log')).sort()).toEqual(
      [3, 4, 5].map((id) => `${String(id).padStart(20, '0')}.json`),
    );
  });

  it('should find the head from the event files when the head file is lost', async () => {
    const j = await journal();
    await j.publish('challenge.created', { challengeId: 'c' });
    await j.publish('challenge.deleted', { challengeId: 'c' });
    rmSync(join(dir, 'head'));
    expect(await j.head()).toBe(2);
    expect((await j.publish('challenge.created', { challengeId: 'd' }))?.id).toBe(3);
  });

  it('should find the head from the event files when the head file is empty', async () => {
    const j = await journal(2);
    for (let i = 0; i < 4; i++) await j.publish('challenge.updated', { challengeId: `c${i}` });
    // A head renamed into place but not flushed, after a power loss: read as 0, the next append
    // would take id 1 again (pruned long ago) and readers past it would never see it.
    writeFileSync(join(dir, 'head'), '');
    expect(await j.head()).toBe(4);
    expect((await j.publish('challenge.created', { challengeId: 'd' }))?.id).toBe(5);
  });

  describe('group commit', () => {
    const name = (id: number) => `${String(id).padStart(20, '0')}.json`;
    const once = (value: string) => ({
      key: 'instance.expiring/0123456789abcdef',
      value,
      keepUntil: new Date('2026-05-01T11:00:00Z'),
    });

    it('should write publications made together as one batch, under one lock, in call order', async () => {
      const j = await journal();
      const events = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          j.publish('challenge.updated', { challengeId: `c${i}` }),
        ),
      );
      expect(events.map((e) => [e?.id, e?.challengeId])).toEqual(
        Array.from({ length: 10 }, (_, i) => [i + 1, `c${i}`]),
      );
      expect(journals.lock.writeLocks).toBe(1);
      expect(await j.head()).toBe(10);
      expect((await j.readAfter(0, {})).events).toEqual(events);
    });

    it('should publish a once event a single time within one batch, again for a new value', async () => {
      const j = await journal();
      const subject = { challengeId: 'c', identity: '0123456789abcdef' };
      const events = await Promise.all([
        j.publish('instance.expiring', subject, once('u1')),
        j.publish('instance.expiring', subject, once('u1')),
        j.publish('instance.expiring', subject, once('u2')),
        j.publish('challenge.updated', { challengeId: 'c' }),
      ]);
      expect(events.map((e) => e?.id)).toEqual([1, undefined, 2, 3]);
      expect(journals.lock.writeLocks).toBe(1);
      // The mark holds the batch's last value.
      expect(await j.publish('instance.expiring', subject, once('u2'))).toBeUndefined();
    });

    it('should lose the whole batch when it cannot be written, and write the next one', async () => {
      const j = await journal();
      rmSync(join(dir, 'log'), { recursive: true });
      writeFileSync(join(dir, 'log'), 'not a directory');
      const lost = await Promise.all([
        j.publish('challenge.created', { challengeId: 'c' }),
        j.publish('challenge.updated', { challengeId: 'c' }),
      ]);
      expect(lost).toEqual([undefined, undefined]);
      rmSync(join(dir, 'log'));
      mkdirSync(join(dir, 'log'));
      const next = await Promise.all([
        j.publish('challenge.created', { challengeId: 'd' }),
        j.publish('challenge.updated', { challengeId: 'd' }),
      ]);
      expect(next.map((e) => e?.id)).toEqual([1, 2]);
      expect((await j.readAfter(0, {})).events).toEqual(next);
    });

    it('should skip, within a batch, the ids a crashed append left behind past the head', async () => {
      const j = await journal();
      await j.publish('challenge.created', { challengeId: 'c' });
      writeFileSync(join(dir, 'log', name(3)), '');
      const events = await Promise.all(
        ['a', 'b', 'c'].map((challengeId) => j.publish('challenge.updated', { challengeId })),
      );
      expect(events.map((e) => e?.id)).toEqual([2, 4, 5]);
      expect(await j.head()).toBe(5);
      expect(readdirSync(join(dir, 'log')).sort()).toEqual([1, 2, 3, 4, 5].map(name));
      expect((await j.readAfter(1, {})).events).toEqual(events);
    });

    it('should remove every event a batch pushes beyond the size', async () => {
      const j = await journal(3);
      await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          j.publish('challenge.updated', { challengeId: `c${i}` }),
        ),
      );
      expect(readdirSync(join(dir, 'log')).sort()).toEqual([3, 4, 5].map(name));
    });
  });
});

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventJournalContract } from '../../../test/contract/event-journal.contract';
import { FixedClock } from '../../../test/support/fakes/fixed-clock';
import { InMemoryDistributedLock } from '../lock/in-memory-distributed-lock.adapter';
import { FsEventJournal } from './fs-event-journal.adapter';

/** Journals on one directory and one lock, as replicas share DIR and etcd. */
function journalsOn(dir: string, clock: FixedClock) {
  const lock = new InMemoryDistributedLock();
  const opened: FsEventJournal[] = [];
  return {
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
});

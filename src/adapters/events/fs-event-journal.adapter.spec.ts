import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FixedClock } from '../../../test/support/fakes/fixed-clock';
import { InMemoryDistributedLock } from '../lock/in-memory-distributed-lock.adapter';
import { FsEventJournal } from './fs-event-journal.adapter';

describe('FsEventJournal', () => {
  let dir: string;
  let clock: FixedClock;
  const journals: FsEventJournal[] = [];

  /** A journal on `dir` (replicas share it, each with its own instance; the lock is shared). */
  const lock = new InMemoryDistributedLock();
  async function journal(size = 100, pollMs = 20): Promise<FsEventJournal> {
    const j = new FsEventJournal({ dir, size, pollMs }, lock, clock);
    await j.onModuleInit();
    journals.push(j);
    return j;
  }

  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'cm-journal-')), 'events');
    clock = new FixedClock(new Date('2026-05-01T10:00:00Z'));
  });

  afterEach(() => {
    for (const j of journals.splice(0)) j.onModuleDestroy();
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  describe('publish', () => {
    it('should give ids from 1, in order, with the time and ids of the subject', async () => {
      const j = await journal();
      const first = await j.publish('challenge.created', { challengeId: 'c' });
      const second = await j.publish('instance.created', {
        challengeId: 'c',
        sourceId: 's',
        identity: '0123456789abcdef',
      });
      expect(first).toEqual({
        id: 1,
        time: new Date('2026-05-01T10:00:00Z'),
        type: 'challenge.created',
        challengeId: 'c',
      });
      expect(second?.id).toBe(2);
      expect(await j.head()).toBe(2);
      const page = await j.readAfter(0, {});
      expect(page.events).toEqual([first, second]);
      expect(page).toMatchObject({ cursor: 2, missed: false });
    });

    it('should keep ids monotonic across journals sharing the directory and the lock', async () => {
      const [one, two] = [await journal(), await journal()];
      const published = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? one : two).publish('challenge.updated', { challengeId: `c${i}` }),
        ),
      );
      const ids = published.map((e) => e?.id).sort((a, b) => (a ?? 0) - (b ?? 0));
      expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect((await two.readAfter(0, {})).events.map((e) => e.id)).toEqual(ids);
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

    it('should publish a once event a single time per key and value', async () => {
      const [one, two] = [await journal(), await journal()];
      const once = (value: string) => ({
        key: 'instance.expiring/0123456789abcdef',
        value,
        keepUntil: new Date('2026-05-01T11:00:00Z'),
      });
      const subject = { challengeId: 'c', sourceId: 's', identity: '0123456789abcdef' };
      const results = await Promise.all([
        one.publish('instance.expiring', subject, once('u1')),
        two.publish('instance.expiring', subject, once('u1')),
      ]);
      expect(results.filter((r) => r !== undefined)).toHaveLength(1);
      expect(await one.publish('instance.expiring', subject, once('u2'))).toMatchObject({ id: 2 });
    });
  });

  describe('readAfter', () => {
    it('should prune the oldest events beyond its size and report the gap to a late reader', async () => {
      const j = await journal(3);
      for (let i = 0; i < 5; i++) await j.publish('challenge.updated', { challengeId: `c${i}` });
      expect(readdirSync(join(dir, 'log')).sort()).toEqual(
        [3, 4, 5].map((id) => `${String(id).padStart(20, '0')}.json`),
      );
      const page = await j.readAfter(1, {});
      expect(page.missed).toBe(true);
      expect(page.events.map((e) => e.id)).toEqual([3, 4, 5]);
      expect((await j.readAfter(2, {})).missed).toBe(false);
    });

    it('should filter by challenge and source, and move the cursor past what it skipped', async () => {
      const j = await journal();
      await j.publish('instance.created', { challengeId: 'c1', sourceId: 'a', identity: 'x' });
      await j.publish('instance.created', { challengeId: 'c1', sourceId: 'b', identity: 'y' });
      await j.publish('instance.created', { challengeId: 'c2', sourceId: 'a', identity: 'z' });
      const bySource = await j.readAfter(0, { sourceId: 'a' });
      expect(bySource.events.map((e) => e.identity)).toEqual(['x', 'z']);
      const both = await j.readAfter(0, { challengeId: 'c1', sourceId: 'b' });
      expect(both.events.map((e) => e.identity)).toEqual(['y']);
      expect(both.cursor).toBe(3);
      const paged = await j.readAfter(0, {}, 2);
      expect(paged.events.map((e) => e.id)).toEqual([1, 2]);
      expect(paged.cursor).toBe(2);
    });
  });

  describe('waitAfter', () => {
    it('should wake a reader of another journal instance when an event is published', async () => {
      const [reader, writer] = [await journal(), await journal()];
      const woken = reader.waitAfter(0, new AbortController().signal);
      await writer.publish('challenge.created', { challengeId: 'c' });
      await woken;
      expect((await reader.readAfter(0, {})).events).toHaveLength(1);
    });

    it('should resolve on abort without an event', async () => {
      const j = await journal();
      const abort = new AbortController();
      const waiting = j.waitAfter(0, abort.signal);
      abort.abort();
      await waiting;
      expect(await j.head()).toBe(0);
    });
  });

  describe('cursors', () => {
    it('should keep a named cursor across instances, and none before it is saved', async () => {
      const j = await journal();
      expect(await j.loadCursor('webhook')).toBeUndefined();
      await j.saveCursor('webhook', 42);
      expect(await (await journal()).loadCursor('webhook')).toBe(42);
    });
  });
});

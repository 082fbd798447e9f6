import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventJournal, EventPublisher } from '../../src/shared/ports/event-journal.port';
import type { FixedClock } from '../support/fakes/fixed-clock';

export type Journal = EventPublisher & EventJournal;

/** Journals under test: `open()` gives another one on the same storage (another replica). */
export interface JournalUnderTest {
  clock: FixedClock;
  open(size?: number): Promise<Journal>;
  cleanup: () => Promise<void>;
}

/**
 * The promised behaviour of {@link EventPublisher} and {@link EventJournal}, for every adapter
 * (FsEventJournal, and the InMemoryEventJournal double the service tests use).
 */
export function eventJournalContract(name: string, make: () => Promise<JournalUnderTest>): void {
  describe(`${name} (EventJournal contract)`, () => {
    let subject: JournalUnderTest;

    beforeEach(async () => {
      subject = await make();
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('should give ids from 1 in publication order, with the time and the ids of the subject', async () => {
      const j = await subject.open();
      expect(await j.head()).toBe(0);
      const first = await j.publish('challenge.created', { challengeId: 'c' });
      const second = await j.publish('instance.created', {
        challengeId: 'c',
        sourceId: 's',
        identity: '0123456789abcdef',
      });
      expect(first).toEqual({
        id: 1,
        time: subject.clock.now(),
        type: 'challenge.created',
        challengeId: 'c',
      });
      expect(second).toMatchObject({ id: 2, sourceId: 's', identity: '0123456789abcdef' });
      expect(await j.head()).toBe(2);
      expect(await j.readAfter(0, {})).toEqual({
        events: [first, second],
        cursor: 2,
        missed: false,
      });
    });

    it('should keep ids monotonic and gap-free over concurrent publishers of the same journal', async () => {
      const [one, two] = [await subject.open(), await subject.open()];
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? one : two).publish('challenge.updated', { challengeId: `c${i}` }),
        ),
      );
      const ids = (await two.readAfter(0, {})).events.map((e) => e.id);
      expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('should give ids in call order to publications made before any is awaited', async () => {
      const j = await subject.open();
      const events = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          j.publish('challenge.updated', { challengeId: `c${i}` }),
        ),
      );
      expect(events.map((e) => [e?.id, e?.challengeId])).toEqual(
        Array.from({ length: 5 }, (_, i) => [i + 1, `c${i}`]),
      );
    });

    it('should publish a once event a single time per key and value, again for a new value', async () => {
      const [one, two] = [await subject.open(), await subject.open()];
      const subjectIds = { challengeId: 'c', sourceId: 's', identity: '0123456789abcdef' };
      const once = (value: string) => ({
        key: 'instance.expiring/0123456789abcdef',
        value,
        keepUntil: new Date(subject.clock.now().getTime() + 3_600_000),
      });
      const results = await Promise.all([
        one.publish('instance.expiring', subjectIds, once('u1')),
        two.publish('instance.expiring', subjectIds, once('u1')),
      ]);
      expect(results.filter((r) => r !== undefined)).toHaveLength(1);
      expect(await one.publish('instance.expiring', subjectIds, once('u2'))).toMatchObject({
        id: 2,
      });
    });

    it('should filter by challenge and source, page, and move the cursor past what it skipped', async () => {
      const j = await subject.open();
      await j.publish('instance.created', { challengeId: 'c1', sourceId: 'a', identity: 'x' });
      await j.publish('instance.created', { challengeId: 'c1', sourceId: 'b', identity: 'y' });
      await j.publish('instance.created', { challengeId: 'c2', sourceId: 'a', identity: 'z' });
      await j.publish('challenge.created', { challengeId: 'c3' });
      const bySource = await j.readAfter(0, { sourceId: 'a' });
      expect(bySource.events.map((e) => e.identity)).toEqual(['x', 'z']);
      expect(bySource.cursor).toBe(4);
      const both = await j.readAfter(0, { challengeId: 'c1', sourceId: 'b' });
      expect(both.events.map((e) => e.identity)).toEqual(['y']);
      const paged = await j.readAfter(1, {}, 2);
      expect(paged.events.map((e) => e.id)).toEqual([2, 3]);
      expect(paged.cursor).toBe(3);
      expect(await j.readAfter(4, {})).toEqual({ events: [], cursor: 4, missed: false });
    });

    it('should keep the last `size` events and tell a reader behind them it missed some', async () => {
      const j = await subject.open(3);
      for (let i = 0; i < 5; i++) await j.publish('challenge.updated', { challengeId: `c${i}` });
      const late = await j.readAfter(1, {});
      expect(late.missed).toBe(true);
      expect(late.events.map((e) => e.id)).toEqual([3, 4, 5]);
      expect((await j.readAfter(2, {})).missed).toBe(false);
    });

    it('should wake a reader of another journal on the same storage when an event comes', async () => {
      const [reader, writer] = [await subject.open(), await subject.open()];
      const woken = reader.waitAfter(0, new AbortController().signal);
      await writer.publish('challenge.created', { challengeId: 'c' });
      await woken;
      expect((await reader.readAfter(0, {})).events).toHaveLength(1);
      // Already behind the head: at once.
      await reader.waitAfter(0, new AbortController().signal);
    });

    it('should stop waiting when aborted, with no event', async () => {
      const j = await subject.open();
      const abort = new AbortController();
      const waiting = j.waitAfter(0, abort.signal);
      abort.abort();
      await waiting;
      expect(await j.head()).toBe(0);
    });

    it('should keep a named cursor for every journal on the storage, none before it is saved', async () => {
      const j = await subject.open();
      expect(await j.loadCursor('webhook')).toBeUndefined();
      await j.saveCursor('webhook', 42);
      expect(await (await subject.open()).loadCursor('webhook')).toBe(42);
    });
  });
}

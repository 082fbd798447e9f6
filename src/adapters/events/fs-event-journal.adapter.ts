import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  unlink,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import {
  EVENT_TYPES,
  lockKeys,
  matchesFilter,
  type EventFilter,
  type EventSubject,
  type EventType,
  type LifecycleEvent,
} from '../../shared/domain';
import type { Clock } from '../../shared/ports/clock.port';
import { fsyncDir, isNotFound, writeAtomic } from '../state/durable-files';
import type { DistributedLock } from '../../shared/ports/distributed-lock.port';
import {
  EventJournal,
  EventPublisher,
  type EventPage,
} from '../../shared/ports/event-journal.port';

/** Options of {@link FsEventJournal}. */
export interface FsEventJournalOptions {
  /** The journal's directory (`DIR/events`). */
  dir: string;
  /** Events kept; older ones are pruned (EVENTS_JOURNAL_SIZE). */
  size: number;
  /**
   * How often waiting readers look at the head besides fs.watch, which does not report what
   * other hosts write on a shared filesystem (NFS and the like).
   */
  pollMs?: number;
}

/** Events read per page at most. */
const DEFAULT_PAGE = 500;
/** Once marks are pruned at most this often. */
const ONCE_PRUNE_EVERY_MS = 10 * 60_000;
const ID_DIGITS = 20;
/** Events written by one flush at most, so one holding of the `events` lock stays bounded. */
const MAX_BATCH = 256;

interface OnceMark {
  key: string;
  value: string;
  keepUntil: Date;
}

/** The file of one id taken by a batch, open for its event. */
interface Slot {
  id: number;
  handle: FileHandle;
}

/** A `publish` call waiting for its batch. */
interface Pending {
  type: EventType;
  subject: EventSubject;
  once: OnceMark | undefined;
  resolve: (event: LifecycleEvent | undefined) => void;
}

interface StoredEvent {
  id: number;
  time: string;
  type: EventType;
  challengeId: string;
  sourceId?: string;
  identity?: string;
  sharedFrom?: string;
}

const fileName = (id: number): string => `${String(id).padStart(ID_DIGITS, '0')}.json`;
const isTaken = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'EEXIST';
const scratch = (): string => `.tmp-${randomBytes(6).toString('hex')}`;

/**
 * The event journal as files under DIR, shared by every replica as the records are:
 *
 * ```
 * DIR/events/log/<id, 20 digits>.json   one event per file (id, time, type, ids)
 * DIR/events/head                       the last id (a hint: the files are the truth)
 * DIR/events/once/<md5(key)>            marks of `once` publications
 * DIR/events/cursors/<name>             readers' durable positions (the webhook deliverer's)
 * ```
 *
 * Appends hold the `events` write lock, so ids are monotonic across replicas; a process appends
 * the publications queued meanwhile together (one lock, one directory fsync, one head write per
 * batch), with ids in the order of the `publish` calls. A batch creates its event files
 * exclusively at the next free ids, fills them, and flushes them and the directory in one round
 * before the head moves; readers never read past the head, so a reader never sees half an event.
 * After a crash before the head moved, the next append finds those ids taken and moves on (an
 * empty or partial file left there reads as no event). The journal keeps the last `size` events:
 * each append removes the ones `size` ids back.
 */
@Injectable()
export class FsEventJournal implements EventPublisher, EventJournal, OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(FsEventJournal.name);
  private readonly logDir: string;
  private readonly onceDir: string;
  private readonly cursorDir: string;
  private readonly headPath: string;
  private readonly pollMs: number;
  private readonly waiters = new Set<{ cursor: number; wake: () => void }>();
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  private checking = false;
  private recheck = false;
  private lastOncePrune = 0;
  /** Publications not written yet, in call order. */
  private readonly queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly options: FsEventJournalOptions,
    private readonly lock: DistributedLock,
    private readonly clock: Clock,
  ) {
    this.logDir = join(options.dir, 'log');
    this.onceDir = join(options.dir, 'once');
    this.cursorDir = join(options.dir, 'cursors');
    this.headPath = join(options.dir, 'head');
    this.pollMs = options.pollMs ?? 500;
  }

  async onModuleInit(): Promise<void> {
    for (const dir of [this.logDir, this.onceDir, this.cursorDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    }
    await this.pruneLog(await this.head());
  }

  onModuleDestroy(): void {
    for (const waiter of [...this.waiters]) waiter.wake();
    this.stopWatching();
  }

  publish(
    type: EventType,
    subject: EventSubject,
    once?: OnceMark,
  ): Promise<LifecycleEvent | undefined> {
    return new Promise((resolve) => {
      this.queue.push({ type, subject, once, resolve });
      if (!this.flushing) void this.flush();
    });
  }

  /**
   * Group commit: one flush at a time, each taking the `events` lock once for every event queued
   * so far (up to MAX_BATCH), so concurrent publishers share the lock round trips and the
   * directory fsync instead of queueing on the lock one event at a time. What is published
   * while a batch is written goes into the next one.
   */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        let batch: Pending[] | undefined;
        // Taken once the lock is held, so what was queued while waiting for it joins the batch
        // (and calls made in one go, like Promise.all, share it); taken in the failure path too,
        // so a lock that cannot be had fails this batch instead of looping on it.
        const take = (): Pending[] => (batch ??= this.queue.splice(0, MAX_BATCH));
        let events: (LifecycleEvent | undefined)[] = [];
        try {
          events = await this.lock.withWriteLock(lockKeys.events(), () => this.append(take()));
        } catch (err) {
          for (const { type, subject } of take()) {
            this.logger.error(
              `event ${type} of challenge ${subject.challengeId} not published: ${String(err)}`,
            );
          }
        }
        take().forEach((pending, i) => pending.resolve(events[i]));
        if (events.some((event) => event !== undefined)) void this.check();
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Writes a batch under the `events` lock: its events (undefined for a `once` already seen). */
  private async append(batch: Pending[]): Promise<(LifecycleEvent | undefined)[]> {
    // Marks by path, with the value this batch gives them: a `once` publication earlier in the
    // batch counts as if its mark were already written.
    const marks = new Map<string, { value: string; keepUntil: Date }>();
    const results: (LifecycleEvent | undefined)[] = [];
    const events: LifecycleEvent[] = [];
    const head = await this.head();
    for (const { type, subject, once } of batch) {
      if (once) {
        const mark = join(this.onceDir, createHash('md5').update(once.key).digest('hex'));
        const seen =
          marks.get(mark)?.value ??
          (await readFile(mark, 'utf8').then(
            (text) => (JSON.parse(text) as { value: string }).value,
            () => undefined,
          ));
        if (seen === once.value) {
          results.push(undefined);
          continue;
        }
        marks.set(mark, { value: once.value, keepUntil: once.keepUntil });
      }
      const event: LifecycleEvent = {
        id: head + events.length + 1,
        time: this.clock.now(),
        type,
        challengeId: subject.challengeId,
      };
      if (subject.sourceId !== undefined) event.sourceId = subject.sourceId;
      if (subject.identity !== undefined) event.identity = subject.identity;
      if (subject.sharedFrom !== undefined) event.sharedFrom = subject.sharedFrom;
      events.push(event);
      results.push(event);
    }
    if (events.length === 0) return results;
    const slots = await this.takeSlots(head, events.length);
    events.forEach((event, i) => (event.id = slots[i]!.id));
    try {
      // The contents, then one flush round: every file and the directory side by side (the
      // entries are in the directory already, so its flush makes them durable).
      await Promise.all(
        slots.map(({ handle }, i) => handle.writeFile(JSON.stringify(toStored(events[i]!)))),
      );
      await Promise.all([...slots.map(({ handle }) => handle.sync()), fsyncDir(this.logDir)]);
    } catch (err) {
      // Past the head, so never read: ours to remove.
      await Promise.all(
        slots.map(({ id }) => unlink(join(this.logDir, fileName(id))).catch(() => undefined)),
      );
      throw err;
    } finally {
      await Promise.all(slots.map(({ handle }) => handle.close().catch(() => undefined)));
    }
    const last = slots.at(-1)!.id;
    await this.writeHead(last);
    for (const [mark, { value, keepUntil }] of marks) {
      await writeReplacing(mark, JSON.stringify({ value, keepUntil }));
    }
    if (marks.size > 0) await this.pruneOnce();
    // What fell off the journal: the ids `size` back from those this batch moved the head over.
    const { size } = this.options;
    for (let gone = Math.max(1, head + 1 - size); gone <= last - size; gone++) {
      await unlink(join(this.logDir, fileName(gone))).catch(() => undefined);
    }
    return results;
  }

  /**
   * Creates, exclusively and empty, the files of the next `count` ids after `head`, in id order
   * (an id whose file exists is one a crashed append took: skipped). Opened side by side, one
   * round per set of ids tried; the files are filled by the caller.
   */
  private async takeSlots(head: number, count: number): Promise<Slot[]> {
    const slots: Slot[] = [];
    let next = head + 1;
    try {
      while (slots.length < count) {
        const ids = Array.from({ length: count - slots.length }, (_, i) => next + i);
        next += ids.length;
        const opened = await Promise.allSettled(
          ids.map((id) => open(join(this.logDir, fileName(id)), 'wx', 0o600)),
        );
        opened.forEach((result, i) => {
          if (result.status === 'fulfilled') slots.push({ id: ids[i]!, handle: result.value });
        });
        const failed = opened.find((r) => r.status === 'rejected' && !isTaken(r.reason));
        if (failed?.status === 'rejected') throw failed.reason;
      }
    } catch (err) {
      await Promise.all(
        slots.map(async ({ id, handle }) => {
          await handle.close().catch(() => undefined);
          await unlink(join(this.logDir, fileName(id))).catch(() => undefined);
        }),
      );
      throw err;
    }
    return slots;
  }

  async head(): Promise<number> {
    try {
      // An empty head (written but not flushed before a power loss) is no head: read as 0, the
      // next append would reuse pruned ids.
      const text = (await readFile(this.headPath, 'utf8')).trim();
      const id = Number(text);
      if (text !== '' && Number.isSafeInteger(id) && id >= 0) return id;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // No head (a new journal, or one lost): the highest event file.
    return (await this.ids()).at(-1) ?? 0;
  }

  async readAfter(cursor: number, filter: EventFilter, limit = DEFAULT_PAGE): Promise<EventPage> {
    const head = await this.head();
    const oldest = Math.max(1, head - this.options.size + 1);
    const start = Math.max(cursor + 1, oldest);
    const missed = cursor + 1 < oldest && head > 0 && cursor < head;
    const end = Math.min(head, start + limit - 1);
    const events: LifecycleEvent[] = [];
    for (let id = start; id <= end; id++) {
      const event = await this.readEvent(id);
      if (event && matchesFilter(event, filter)) events.push(event);
    }
    return { events, cursor: Math.max(cursor, end), missed };
  }

  waitAfter(cursor: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const waiter = {
        cursor,
        wake: (): void => {
          this.waiters.delete(waiter);
          signal.removeEventListener('abort', waiter.wake);
          if (this.waiters.size === 0) this.stopWatching();
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal.addEventListener('abort', waiter.wake, { once: true });
      this.startWatching();
      void this.check();
    });
  }

  async loadCursor(name: string): Promise<number | undefined> {
    try {
      const id = Number((await readFile(join(this.cursorDir, name), 'utf8')).trim());
      return Number.isSafeInteger(id) && id >= 0 ? id : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async saveCursor(name: string, id: number): Promise<void> {
    await writeAtomic(join(this.cursorDir, name), String(id), 0o600);
  }

  private async readEvent(id: number): Promise<LifecycleEvent | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.logDir, fileName(id)), 'utf8');
    } catch (err) {
      // Pruned while we read, or skipped by an append after a crash.
      if (isNotFound(err)) return undefined;
      throw err;
    }
    // The empty file of an id an append took and did not fill (it crashed): no event.
    if (text === '') return undefined;
    try {
      return fromStored(JSON.parse(text) as StoredEvent);
    } catch (err) {
      this.logger.warn(`skipping unreadable event ${id}: ${String(err)}`);
      return undefined;
    }
  }

  /** Ids of the event files, ascending. */
  private async ids(): Promise<number[]> {
    const names = await readdir(this.logDir).catch((err: unknown) => {
      if (isNotFound(err)) return [];
      throw err;
    });
    return names
      .filter((n) => /^\d+\.json$/.test(n))
      .map((n) => Number(n.slice(0, -'.json'.length)))
      .sort((a, b) => a - b);
  }

  /** Removes what a smaller journal size, or appends that died before their prune, left. */
  private async pruneLog(head: number): Promise<void> {
    const oldest = head - this.options.size + 1;
    for (const id of await this.ids()) {
      if (id >= oldest) break;
      await unlink(join(this.logDir, fileName(id))).catch(() => undefined);
    }
  }

  /** Removes the marks whose `keepUntil` has passed (under the `events` lock). */
  private async pruneOnce(): Promise<void> {
    const now = this.clock.now().getTime();
    if (now - this.lastOncePrune < ONCE_PRUNE_EVERY_MS) return;
    this.lastOncePrune = now;
    for (const name of await readdir(this.onceDir)) {
      const path = join(this.onceDir, name);
      const keepUntil = await readFile(path, 'utf8').then(
        (text) => Date.parse((JSON.parse(text) as { keepUntil: string }).keepUntil),
        () => 0,
      );
      if (!(keepUntil > now)) await unlink(path).catch(() => undefined);
    }
  }

  private async writeHead(id: number): Promise<void> {
    // Not flushed: a head lost in a crash is found again from the event files (see head()).
    await writeReplacing(this.headPath, String(id));
  }

  private startWatching(): void {
    if (this.poll) return;
    this.poll = setInterval(() => void this.check(), this.pollMs);
    this.poll.unref();
    try {
      this.watcher = watch(this.options.dir, () => void this.check());
      this.watcher.on('error', () => this.watcher?.close());
    } catch (err) {
      this.logger.warn(`watching ${this.options.dir} failed, polling only: ${String(err)}`);
    }
  }

  private stopWatching(): void {
    clearInterval(this.poll);
    this.poll = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Wakes the waiters behind the head; one check at a time (a burst of changes is one read). */
  private async check(): Promise<void> {
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.recheck = false;
        if (this.waiters.size === 0) return;
        const head = await this.head().catch(() => 0);
        for (const waiter of [...this.waiters]) if (head > waiter.cursor) waiter.wake();
      } while (this.recheck);
    } finally {
      this.checking = false;
    }
  }
}

function toStored(event: LifecycleEvent): StoredEvent {
  return { ...event, time: event.time.toISOString() };
}

function fromStored(stored: StoredEvent): LifecycleEvent {
  const time = new Date(stored.time);
  if (
    !Number.isSafeInteger(stored.id) ||
    Number.isNaN(time.getTime()) ||
    !(EVENT_TYPES as readonly string[]).includes(stored.type) ||
    typeof stored.challengeId !== 'string'
  ) {
    throw new Error('not an event record');
  }
  const event: LifecycleEvent = {
    id: stored.id,
    time,
    type: stored.type,
    challengeId: stored.challengeId,
  };
  if (typeof stored.sourceId === 'string') event.sourceId = stored.sourceId;
  if (typeof stored.identity === 'string') event.identity = stored.identity;
  if (typeof stored.sharedFrom === 'string') event.sharedFrom = stored.sharedFrom;
  return event;
}

/**
 * Replaces `path` atomically (temp file, rename), not flushed: for hints and marks a crash may
 * lose (durable writes use the state store's writeAtomic).
 */
async function writeReplacing(path: string, data: string): Promise<void> {
  const tmp = `${path}${scratch()}`;
  try {
    await writeFile(tmp, data, { encoding: 'utf8', mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

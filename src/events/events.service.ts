import { Injectable } from '@nestjs/common';
import type { EventFilter, LifecycleEvent } from '../shared/domain';
import { EventJournal } from '../shared/ports';
import type { WatchInput } from './transport/event.wire';

/** Watches of the event journal, for the gRPC and Server-Sent Events transports. */
@Injectable()
export class EventsService {
  constructor(private readonly journal: EventJournal) {}

  /**
   * Where a watch starts: after `after`, or after the last event published so far. Read before
   * the stream is answered, so that whatever a client does once it is answered is seen.
   */
  async startOf({ after }: WatchInput): Promise<number> {
    return after ?? (await this.journal.head());
  }

  /**
   * The events matching `filter` after `cursor`, in id order, then each new one as it is
   * published on any replica, until `signal` aborts. A position older than the journal's oldest
   * event resumes at that event (the rest was pruned).
   */
  async *watch(
    filter: EventFilter,
    cursor: number,
    signal: AbortSignal,
  ): AsyncIterable<LifecycleEvent> {
    while (!signal.aborted) {
      const page = await this.journal.readAfter(cursor, filter);
      for (const event of page.events) {
        if (signal.aborted) return;
        yield event;
      }
      const moved = page.cursor > cursor;
      cursor = page.cursor;
      if (!moved) await this.journal.waitAfter(cursor, signal);
    }
  }
}

import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { createHmac } from 'node:crypto';
import { lockKeys, type LifecycleEvent } from '../shared/domain';
import { DistributedLock, EventJournal } from '../shared/ports';
import { EventsOptions } from './events.options';
import { eventToJson } from './transport/event.wire';

/** The deliverer's position in the journal (DIR/events/cursors/webhook). */
const CURSOR = 'webhook';
/** Pauses between the attempts of one delivery: doubling from the first to the last. */
export const WEBHOOK_BACKOFF = { firstMs: 500, maxMs: 60_000 };
/** Bound of one POST: a receiver that hangs is retried like one that fails. */
const REQUEST_TIMEOUT_MS = 10_000;
export const SIGNATURE_HEADER = 'X-Chall-Manager-Signature';

/** `sha256=<hex>`: HMAC-SHA256 of the body with the secret, as the receiver recomputes it. */
export function signatureOf(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The pause before attempt `attempt + 1` (0-based `attempt` that failed). */
export function backoffMs(attempt: number): number {
  return Math.min(WEBHOOK_BACKOFF.maxMs, WEBHOOK_BACKOFF.firstMs * 2 ** Math.min(attempt, 30));
}

/**
 * POSTs every event to WEBHOOK_URL, in id order, at least once: an event is retried (backoff
 * {@link WEBHOOK_BACKOFF}) until the receiver answers 2xx, and the next one waits for it. The
 * position is saved under DIR after each delivery, so a restart or another replica goes on from
 * there (an event delivered just before a crash may be delivered again). One replica delivers
 * at a time: it holds the `webhook` lock while it runs, and another takes over when it stops
 * or dies (its lease expires). A journal without a position starts at its head: an operator
 * adding a webhook does not get the whole past.
 */
@Injectable()
export class WebhookDeliverer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhookDeliverer.name);
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;

  constructor(
    private readonly journal: EventJournal,
    private readonly lock: DistributedLock,
    private readonly options: EventsOptions,
  ) {}

  onApplicationBootstrap(): void {
    const webhook = this.options.webhook;
    if (webhook) this.running = this.run(webhook, this.stop.signal);
  }

  async onModuleDestroy(): Promise<void> {
    this.stop.abort(new DOMException('application shutdown', 'AbortError'));
    await this.running;
  }

  private async run(webhook: { url: string; secret: string }, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.lock.withWriteLock(
          lockKeys.webhook(),
          () => this.deliverAll(webhook, signal),
          signal,
        );
      } catch (err) {
        if (signal.aborted) return;
        this.logger.error(`webhook delivery stopped, starting again: ${String(err)}`);
        await sleep(WEBHOOK_BACKOFF.firstMs, signal);
      }
    }
  }

  /** Under the `webhook` lock, until `signal` aborts. */
  private async deliverAll(
    webhook: { url: string; secret: string },
    signal: AbortSignal,
  ): Promise<void> {
    let cursor = await this.journal.loadCursor(CURSOR);
    if (cursor === undefined) {
      cursor = await this.journal.head();
      await this.journal.saveCursor(CURSOR, cursor);
    }
    while (!signal.aborted) {
      const page = await this.journal.readAfter(cursor, {});
      for (const event of page.events) {
        await this.deliver(event, webhook, signal);
        cursor = event.id;
        await this.journal.saveCursor(CURSOR, cursor);
      }
      if (page.cursor > cursor) {
        cursor = page.cursor;
        await this.journal.saveCursor(CURSOR, cursor);
      }
      if (page.events.length === 0) await this.journal.waitAfter(cursor, signal);
    }
  }

  /** POSTs `event` until the receiver takes it; rejects only when `signal` aborts. */
  private async deliver(
    event: LifecycleEvent,
    webhook: { url: string; secret: string },
    signal: AbortSignal,
  ): Promise<void> {
    const body = JSON.stringify(eventToJson(event));
    const headers = {
      'Content-Type': 'application/json',
      [SIGNATURE_HEADER]: signatureOf(body, webhook.secret),
      'X-Chall-Manager-Event': event.type,
      'X-Chall-Manager-Delivery': String(event.id),
    };
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      let problem: string;
      try {
        const res = await fetch(webhook.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
        });
        await res.body?.cancel();
        if (res.ok) return;
        problem = `HTTP ${res.status}`;
      } catch (err) {
        signal.throwIfAborted();
        problem = String(err);
      }
      const delay = backoffMs(attempt);
      this.logger.warn(
        `webhook delivery of event ${event.id} (${event.type}) failed (${problem}), attempt ${attempt + 1}; retrying in ${delay} ms`,
      );
      await sleep(delay, signal);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

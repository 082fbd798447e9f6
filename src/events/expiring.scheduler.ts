import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { isClaimed, subjectOf } from '../shared/domain';
import { Clock, EventPublisher, StateStore } from '../shared/ports';
import { EventsOptions } from './events.options';

/**
 * How often instances are scanned: a tenth of the lead (the event comes at most that late),
 * between 1 s and 30 s (a scan reads every instance record).
 */
export function expiringScanPeriodMs(leadMs: number): number {
  return Math.min(30_000, Math.max(1_000, Math.floor(leadMs / 10)));
}

/** Skew between replicas' clocks a mark outlives `until` by. */
const MARK_SLACK_MS = 60_000;

/**
 * Publishes `instance.expiring` once per claimed instance and `until`, EVENTS_EXPIRING_LEAD
 * before `until` (a renewal moves `until`: the next one is announced again). Every replica
 * scans; the journal's `once` mark, written under its lock, makes one of them publish it.
 */
@Injectable()
export class ExpiringScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ExpiringScheduler.name);
  private timer?: NodeJS.Timeout;
  private running: Promise<void> | undefined;
  /** `until` this replica already saw announced, by identity: no lock taken for them again. */
  private readonly announced = new Map<string, number>();

  constructor(
    private readonly state: StateStore,
    private readonly clock: Clock,
    private readonly events: EventPublisher,
    private readonly options: EventsOptions,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(
      () => void this.tick(),
      expiringScanPeriodMs(this.options.expiringLeadMs),
    );
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private tick(): Promise<void> {
    this.running ??= this.scan()
      .catch((err: unknown) => this.logger.error(`expiring scan failed: ${String(err)}`))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Announces the claimed instances whose `until` is within the lead of `now` and not past. */
  async scan(now: Date = this.clock.now()): Promise<void> {
    const lead = this.options.expiringLeadMs;
    const seen = new Set<string>();
    for (const challenge of await this.state.listChallenges()) {
      for (const instance of await this.state.listInstances(challenge.id)) {
        const until = instance.until?.getTime();
        if (!isClaimed(instance) || until === undefined) continue;
        seen.add(instance.identity);
        if (until - lead > now.getTime() || until <= now.getTime()) continue;
        if (this.announced.get(instance.identity) === until) continue;
        await this.events.publish('instance.expiring', subjectOf(instance), {
          key: `instance.expiring/${instance.identity}`,
          value: new Date(until).toISOString(),
          keepUntil: new Date(until + MARK_SLACK_MS),
        });
        this.announced.set(instance.identity, until);
      }
    }
    for (const identity of this.announced.keys())
      if (!seen.has(identity)) this.announced.delete(identity);
  }
}

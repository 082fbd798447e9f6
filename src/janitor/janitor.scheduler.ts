import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type * as Cron from 'cron';
import { AppConfig } from '../config';
import { inBackground } from '../shared/concurrency-gate';
import { lockKeys } from '../shared/domain';
import { DistributedLock } from '../shared/ports';
import { ServiceMetrics } from '../shared/telemetry';
import { JanitorService } from './janitor.service';

/**
 * The cron library, loaded only when JANITOR_CRON is set: it brings in luxon (a quarter of a
 * megabyte of date and time zone code) that the default ticker never uses.
 */
function cronJobs(): typeof Cron.CronJob {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('cron') as typeof Cron).CronJob;
}

/**
 * Runs the janitor's sweep on `JANITOR_TICKER` (or `JANITOR_CRON`). A sweep never overlaps
 * itself: a tick that finds one running is skipped; across replicas the sweep runs under the
 * janitor lock, so one replica sweeps at a time.
 */
@Injectable()
export class JanitorScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(JanitorScheduler.name);
  private running: Promise<void> | undefined;
  private readonly controller = new AbortController();
  private interval: NodeJS.Timeout | undefined;
  private job: Cron.CronJob | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly janitor: JanitorService,
    private readonly lock: DistributedLock,
    private readonly metrics: ServiceMetrics,
  ) {}

  onApplicationBootstrap(): void {
    const { tickerMs, cron } = this.config.janitor;
    // A first sweep at start finishes what a crash left (orphan stacks, expired instances).
    if (cron !== undefined || tickerMs > 0) setImmediate(() => void this.tick());
    if (cron !== undefined) {
      this.job = cronJobs().from({ cronTime: cron, onTick: () => void this.tick(), start: true });
      this.logger.log(`janitor scheduled on cron "${cron}"`);
    } else if (tickerMs > 0) {
      this.interval = setInterval(() => void this.tick(), tickerMs);
      this.logger.log(`janitor sweeps every ${tickerMs} ms`);
    } else {
      this.logger.log('janitor off (JANITOR_TICKER=0)');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.interval);
    this.interval = undefined;
    const job = this.job;
    this.job = undefined;
    await job?.stop();
    this.controller.abort(new DOMException('application shutdown', 'AbortError'));
    await this.running;
  }

  /** Starts a sweep unless one is running; resolves when the started (or running) one ends. */
  tick(): Promise<void> {
    if (this.running) return this.running;
    const signal = this.controller.signal;
    // Background work: where IaC work waits in line, player requests go first.
    this.running = inBackground(() =>
      this.lock.withWriteLock(
        lockKeys.janitor(),
        () => this.janitor.sweep(undefined, signal),
        signal,
      ),
    )
      .then(
        (report) => this.metrics.recordSweep(report),
        (err: unknown) => {
          this.metrics.recordSweep(undefined);
          this.logger.error(`janitor sweep failed: ${String(err)}`);
        },
      )
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}

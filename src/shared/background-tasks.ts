import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';

/**
 * Tracked fire-and-forget work ("spin up one more pooled instance in the background"): a failure is logged, never thrown at the caller, and every promise is kept until it
 * settles so that shutdown and tests can `drain()` instead of sleeping.
 */
@Injectable()
export class BackgroundTasks implements OnApplicationShutdown {
  private readonly logger = new Logger(BackgroundTasks.name);
  private readonly controller = new AbortController();
  private readonly tasks = new Set<Promise<void>>();

  /** Tasks started and not yet settled. */
  get size(): number {
    return this.tasks.size;
  }

  /**
   * Starts `work` now and returns at once. `signal` aborts on application shutdown; work
   * started after that still runs (with an aborted signal) and is still drained.
   */
  run(name: string, work: (signal: AbortSignal) => Promise<void>): void {
    const signal = this.controller.signal;
    const task = (async (): Promise<void> => {
      this.logger.log(`background task ${name} started`);
      try {
        // Awaited inside the try so a synchronous throw is caught like a rejection.
        await work(signal);
      } catch (err) {
        if (signal.aborted) {
          this.logger.warn(`background task ${name} stopped by shutdown: ${messageOf(err)}`);
        } else {
          this.logger.error(
            `background task ${name} failed: ${messageOf(err)}`,
            err instanceof Error ? err.stack : undefined,
          );
        }
      }
    })();
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }

  /** Resolves once no task is running, including tasks started while draining. */
  async drain(): Promise<void> {
    while (this.tasks.size > 0) {
      await Promise.allSettled([...this.tasks]);
    }
  }

  /** Asks running work to stop (abort signal); idempotent. SIGTERM calls it at once. */
  cancel(): void {
    if (!this.controller.signal.aborted) {
      this.controller.abort(new DOMException('application shutdown', 'AbortError'));
    }
  }

  /** Asks running work to stop, then waits for all of it (and its clean-up). */
  async onApplicationShutdown(): Promise<void> {
    this.cancel();
    await this.drain();
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

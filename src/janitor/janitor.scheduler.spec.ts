import { MetricService } from 'nestjs-otel/lib/metrics/metric.service';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppConfig } from '../config';
import type { DistributedLock } from '../shared/ports';
import { ServiceMetrics } from '../shared/telemetry';
import type { JanitorService } from './janitor.service';
import { JanitorScheduler } from './janitor.scheduler';

const REPORT = { deleted: 0, drained: 0, orphans: 0, leaked: 0, leftovers: 0, failed: 0 };

/** A scheduler over a janitor whose sweeps are counted; started as Nest starts it. */
function scheduler(env: Record<string, string>): {
  scheduler: JanitorScheduler;
  sweeps: () => number;
} {
  let sweeps = 0;
  const janitor = {
    sweep: () => {
      sweeps++;
      return Promise.resolve(REPORT);
    },
  } as unknown as JanitorService;
  const config = AppConfig.fromEnv({ DIR: '/data', CACHE: '/cache', ...env });
  const s = new JanitorScheduler(
    config,
    janitor,
    // Sweeps run under the janitor lock; a lock that runs the work at once is enough here.
    {
      withWriteLock: (_key: string, work: () => Promise<unknown>) => work(),
    } as unknown as DistributedLock,
    new ServiceMetrics(new MetricService()),
  );
  return { scheduler: s, sweeps: () => sweeps };
}

describe('JanitorScheduler', () => {
  let running: JanitorScheduler | undefined;
  afterEach(async () => {
    await running?.onApplicationShutdown();
    running = undefined;
    vi.useRealTimers();
  });

  /** Starts a scheduler as Nest does (stopped after the test); timers faked unless told otherwise. */
  function started(env: Record<string, string>, fakeTimers = true): () => number {
    if (fakeTimers) vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setImmediate'] });
    const { scheduler: s, sweeps } = scheduler(env);
    running = s;
    s.onApplicationBootstrap();
    return sweeps;
  }

  async function shutDown(): Promise<void> {
    await running?.onApplicationShutdown();
    running = undefined;
  }

  it('should sweep on JANITOR_CRON, and no more once shut down', async () => {
    const sweeps = started({ JANITOR_CRON: '* * * * * *' }, false);
    // The first sweep at start, then one per second from the cron job.
    await vi.waitFor(() => expect(sweeps()).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
    await shutDown();
    const after = sweeps();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(sweeps()).toBe(after);
  });

  it('should sweep every JANITOR_TICKER, and no more once shut down', async () => {
    const sweeps = started({ JANITOR_TICKER: '1m' });
    await vi.advanceTimersByTimeAsync(0);
    expect(sweeps()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sweeps()).toBe(2);
    await shutDown();
    await vi.advanceTimersByTimeAsync(180_000);
    expect(sweeps()).toBe(2);
  });

  it('should not sweep at all with JANITOR_TICKER=0', async () => {
    const sweeps = started({ JANITOR_TICKER: '0' });
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sweeps()).toBe(0);
  });
});

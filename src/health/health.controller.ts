import { Controller, Get, Inject, Optional, Res } from '@nestjs/common';
import type { Response } from 'express';
import { getHeapStatistics } from 'node:v8';
import { HEALTH_INDICATORS, HealthIndicator } from '../shared/ports/health-indicator.port';
import { DrainState, ServedWhileDraining } from '../shared/transport/drain';
import { SERVICE_NAME, SERVICE_VERSION } from '../shared/version';

/** Answer of `GET /healthcheck`, shaped as upstream's (hellofresh/health-go v5). */
export interface HealthReport {
  status: 'OK' | 'Partially Available' | 'Unavailable' | 'Timeout during health check';
  timestamp: string;
  failures?: Record<string, string>;
  system: {
    version: string;
    goroutines_count: number;
    total_alloc_bytes: number;
    heap_objects_count: number;
    alloc_bytes: number;
  };
  component: { name: string; version: string };
}

/** Per-check budget; upstream registers its `etcd` check with `Timeout: time.Second`. */
export const HEALTH_CHECK_TIMEOUT_MS = 1_000;

// health-go reports a check that overran its budget with this text as the failure message.
const TIMEOUT_MESSAGE = 'Timeout during health check';

/** The failure `/readyz` reports while the replica drains (SIGTERM received). */
export const DRAINING_FAILURE = { shutdown: 'shutting down' };

/**
 * The probes, answered while the replica drains too (they must see it drain):
 * - `GET /healthcheck`: upstream's, unchanged (every indicator; 503 when a critical one fails);
 * - `GET /livez`: liveness, 200 as long as the process serves HTTP. It checks no dependency, so
 *   an etcd outage does not get every replica restarted;
 * - `GET /readyz`: readiness, 503 as soon as the replica drains, else as `/healthcheck` (a
 *   replica that cannot reach etcd takes no traffic).
 */
@Controller()
@ServedWhileDraining()
export class HealthController {
  private readonly indicators: readonly HealthIndicator[];
  private readonly drain: DrainState;

  constructor(
    @Optional() @Inject(HEALTH_INDICATORS) indicators?: HealthIndicator[],
    @Optional() drain?: DrainState,
  ) {
    this.indicators = indicators ?? [];
    this.drain = drain ?? new DrainState();
  }

  /**
   * Runs every indicator concurrently, each within {@link HEALTH_CHECK_TIMEOUT_MS}. A failure of
   * a critical indicator makes the status "Unavailable" and the answer a 503; failures of
   * non-critical ones only (health-go's `SkipOnErr`) make it "Partially Available", a 200.
   */
  @Get('healthcheck')
  async check(@Res({ passthrough: true }) res: Response): Promise<HealthReport> {
    const answer = await this.measure();
    res.status(answer.status === 'Unavailable' ? 503 : 200);
    return answer;
  }

  /** Liveness: no dependency is checked. */
  @Get('livez')
  live(): HealthReport {
    return report({}, false);
  }

  /** Readiness: fails at once when the replica drains, else runs the indicators. */
  @Get('readyz')
  async ready(@Res({ passthrough: true }) res: Response): Promise<HealthReport> {
    const answer = this.drain.isDraining ? report(DRAINING_FAILURE, true) : await this.measure();
    res.status(answer.status === 'Unavailable' ? 503 : 200);
    return answer;
  }

  /** The report without the HTTP part; upstream: hellofresh/health-go v5 `Health.Measure`. */
  async measure(): Promise<HealthReport> {
    const failures: Record<string, string> = {};
    let critical = false;
    await Promise.all(
      this.indicators.map(async (indicator) => {
        const failure = await runCheck(indicator);
        if (failure === undefined) return;
        failures[indicator.name] = failure;
        critical ||= indicator.critical !== false;
      }),
    );
    return report(failures, critical);
  }
}

/** health-go's report of these failures (none: OK; `critical`: Unavailable). */
function report(failures: Record<string, string>, critical: boolean): HealthReport {
  const failed = Object.keys(failures).length > 0;
  const heap = getHeapStatistics();
  const mem = process.memoryUsage();
  return {
    status: critical ? 'Unavailable' : failed ? 'Partially Available' : 'OK',
    timestamp: new Date().toISOString(),
    ...(failed ? { failures } : {}),
    // Same keys as upstream's Go runtime figures, filled with Node's nearest equivalents.
    system: {
      version: process.version,
      goroutines_count: process.getActiveResourcesInfo().length,
      total_alloc_bytes: heap.total_heap_size,
      heap_objects_count: heap.number_of_native_contexts + heap.number_of_detached_contexts,
      alloc_bytes: mem.heapUsed,
    },
    component: { name: SERVICE_NAME, version: SERVICE_VERSION },
  };
}

/** Resolves with the failure message, or undefined when the check passed in time. */
async function runCheck(indicator: HealthIndicator): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(TIMEOUT_MESSAGE), HEALTH_CHECK_TIMEOUT_MS);
  });
  const checked = Promise.resolve()
    .then(() => indicator.check())
    .then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
  try {
    return await Promise.race([checked, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

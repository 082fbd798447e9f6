import type { NotReady, ReadinessBounds, ReadinessProbe } from '../../../src/shared/ports';

/** One `waitReady` call the fake answered. */
export interface FakeReadinessCall {
  probes: string[];
  withinMs: number;
}

/**
 * ReadinessProbe double: a probe answers unless it is in `dead`; no time passes (what the real
 * adapter does within its budget is its own tests' business). Calls are recorded.
 */
export class FakeReadinessProbe implements ReadinessProbe {
  readonly bounds: ReadinessBounds = { readyTimeoutMs: 60_000, claimTimeoutMs: 2_000 };
  readonly calls: FakeReadinessCall[] = [];
  /** Probes that never answer. */
  readonly dead = new Set<string>();

  waitReady(
    probes: readonly string[],
    withinMs: number,
    signal?: AbortSignal,
  ): Promise<NotReady | undefined> {
    this.calls.push({ probes: [...probes], withinMs });
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const failing = probes.flatMap((p, i) => (this.dead.has(p) ? [i + 1] : []));
    return Promise.resolve(
      failing.length === 0 ? undefined : { failing, lastError: 'ECONNREFUSED' },
    );
  }
}

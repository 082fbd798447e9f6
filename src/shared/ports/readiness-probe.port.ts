/** How long instances get to answer their readiness probes (see shared/domain/readiness.ts). */
export interface ReadinessBounds {
  /**
   * A freshly deployed instance (created for a source, or spun up for the pool):
   * READINESS_TIMEOUT. Past it the instance is removed.
   */
  readyTimeoutMs: number;
  /**
   * A pooled instance being claimed: it answered when it entered the pool, so a short check
   * that it still does (its service may have died since) is enough before handing it out.
   */
  claimTimeoutMs: number;
}

/** Why an instance is not ready: for the logs, without the probes themselves. */
export interface NotReady {
  /** 1-based positions, in the `readiness` output, of the probes that never answered. */
  failing: number[];
  /** What the last attempt of the first of them met (ECONNREFUSED, HTTP 503, a timeout…). */
  lastError: string;
}

/**
 * Probes an instance's readiness targets until every one answers or the time is up.
 *
 * - `waitReady` resolves `undefined` once every probe answered (they run side by side, each
 *   retried with a pause between attempts), or a {@link NotReady} when `withinMs` ran out first.
 *   An empty list is ready at once.
 * - An aborted `signal` stops the probes: it rejects with the signal's reason.
 * - Probes are valid ones (`parseReadiness` accepted them); it never throws for one that fails.
 */
export abstract class ReadinessProbe {
  abstract readonly bounds: ReadinessBounds;
  abstract waitReady(
    probes: readonly string[],
    withinMs: number,
    signal?: AbortSignal,
  ): Promise<NotReady | undefined>;
}

/**
 * One dependency checked by `GET /healthcheck` (upstream: hellofresh/health-go `Config`, as
 * registered by ctfer-io/chall-manager cmd/chall-manager/main.go).
 *
 * - `check()` resolves when the dependency answers and rejects (with a message fit for the
 *   report's `failures`) when it does not. It must be cheap and side-effect free: it runs on
 *   every healthcheck request.
 * - The caller bounds it with its own timeout (1 s, as upstream); an implementation should also
 *   put a deadline on its calls so that nothing piles up behind a dead dependency.
 * - A failing indicator makes the whole service "Unavailable" (HTTP 503), unless it is not
 *   `critical` (health-go's `SkipOnErr`): the service is then "Partially Available" (HTTP 200),
 *   the failure still listed.
 */
export abstract class HealthIndicator {
  /** Key under `failures` in the report, e.g. `etcd` as upstream. */
  abstract readonly name: string;
  /** False: a failure asks for an operator's attention but the service still works (default true). */
  readonly critical?: boolean;
  abstract check(): Promise<void>;
}

/**
 * Injection token of the `HealthIndicator[]` the health controller runs. A list cannot be a
 * class token; binding it is optional (no binding = no checks, as upstream without etcd).
 */
export const HEALTH_INDICATORS = Symbol('HEALTH_INDICATORS');

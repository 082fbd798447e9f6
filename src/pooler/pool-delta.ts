/**
 * How many pooled instances to create or delete so the pool matches the challenge's bounds.
 * upstream: ctfer-io/chall-manager pkg/pool/delta.go
 *
 * `min` is the pool size to keep; `max` (0 = none) caps the total of claimed and pooled instances
 * beyond which nothing more is pre-provisioned.
 */
export function poolDelta(
  min: number,
  max: number,
  claimed: number,
  pooled: number,
): { create: number; delete: number } {
  const desired = max === 0 ? min : Math.min(min, Math.max(0, max - claimed));
  return { create: Math.max(0, desired - pooled), delete: Math.max(0, pooled - desired) };
}

/** As upstream: refill after a claim when the pool fell under `min` and `max` allows it. */
export function shouldRefillAfterClaim(
  min: number,
  max: number,
  pooledBefore: number,
  total: number,
): boolean {
  return pooledBefore - 1 < min && (max === 0 || total < max);
}

/** As upstream: refill after a delete when the pool is under `min` and `max` allows it. */
export function shouldRefillAfterDelete(
  min: number,
  max: number,
  pooled: number,
  totalBefore: number,
): boolean {
  return pooled < min && (max === 0 || totalBefore - 1 < max);
}

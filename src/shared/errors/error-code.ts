/**
 * ErrorInfo reasons, verbatim from upstream (ctfer-io/chall-manager pkg/errors, api/v1/common).
 * `INVALID_ARGUMENT` is ours: a request that fails validation before any work starts.
 * `SERVICE_UNAVAILABLE` is ours: the lock service (etcd) cannot be reached.
 * `IAC_TIMEOUT` is ours: a deployment outlived `IAC_TIMEOUT` and was cancelled.
 * `FLAG_CHECK_RATE_LIMITED` is ours: a source made more flag checks than FLAG_CHECK_LIMIT allows.
 * `INSTANCE_NOT_READY` is ours: a new instance did not answer its readiness probes in time.
 */
export const ERROR_REASONS = [
  'CHALLENGE_ALREADY_EXISTS',
  'CHALLENGE_NOT_FOUND',
  'CHALLENGE_EXPIRED',
  'CHALLENGE_NO_RENEWAL',
  'CHALLENGE_POOLER_OUT_OF_BOUNDS',
  'CHALLENGE_INVALID_UPDATE_MASK',
  'INSTANCE_ALREADY_EXISTS',
  'INSTANCE_NOT_FOUND',
  'INSTANCE_EXPIRED',
  'INSTANCE_NOT_READY',
  'OCI_REFERENCE_MALFORMED',
  'OCI_REFERENCE_NOT_FOUND',
  'OCI_INTERACTION',
  'SCENARIO_NON_MATCHING_SPECIFICATION',
  'SCENARIO_PREPROCESSING',
  'INVALID_ARGUMENT',
  'SERVICE_UNAVAILABLE',
  'IAC_TIMEOUT',
  'FLAG_CHECK_RATE_LIMITED',
  'INTERNAL_ERROR',
] as const;
export type ErrorReason = (typeof ERROR_REASONS)[number];

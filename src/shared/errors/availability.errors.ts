import { DomainError } from './domain-error';

/**
 * A dependency the service needs for every write is unreachable (etcd lost its quorum, say).
 * Ours, not upstream's: clients get UNAVAILABLE (HTTP 503) and may retry; nothing was changed.
 */
export class ServiceUnavailableError extends DomainError {
  readonly reason = 'SERVICE_UNAVAILABLE';
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Service temporarily unavailable (${dependency} unreachable). Try again later.`,
      { dependency },
      options,
    );
  }
}

/**
 * The replica is shutting down (SIGTERM): it finishes the requests it has and refuses new ones.
 * Ours, not upstream's: UNAVAILABLE (HTTP 503) with the same reason, so clients retry, on
 * another replica behind a Service.
 */
export class ShuttingDownError extends DomainError {
  readonly reason = 'SERVICE_UNAVAILABLE';
  constructor() {
    super('Service shutting down. Try again later.', { state: 'shutting_down' });
  }
}

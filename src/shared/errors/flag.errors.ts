import { DomainError } from './domain-error';

/**
 * A source made more flag checks than FLAG_CHECK_LIMIT per FLAG_CHECK_WINDOW: brute-forcing
 * flags through the checker is slowed down. RESOURCE_EXHAUSTED (HTTP 429); nothing was checked.
 */
export class FlagCheckRateLimitedError extends DomainError {
  readonly reason = 'FLAG_CHECK_RATE_LIMITED';
  constructor(
    readonly sourceId: string,
    /** Milliseconds until the source may check again. */
    readonly retryAfterMs: number,
  ) {
    super('Too many flag checks for this source. Try again later.', {
      source_id: sourceId,
      retry_after: `${Math.ceil(retryAfterMs / 1000)}s`,
    });
  }
}

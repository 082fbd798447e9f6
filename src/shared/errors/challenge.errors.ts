import { DomainError } from './domain-error';

/** CreateChallenge for an id that is taken. */
export class ChallengeAlreadyExistsError extends DomainError {
  readonly reason = 'CHALLENGE_ALREADY_EXISTS';
  constructor(readonly id: string) {
    super('Challenge already exists.', { id });
  }
}

/** The challenge id is unknown. */
export class ChallengeNotFoundError extends DomainError {
  readonly reason = 'CHALLENGE_NOT_FOUND';
  constructor(readonly id: string) {
    super('Challenge not found.', { id });
  }
}

/** The challenge's `until` has passed: no new instances. */
export class ChallengeExpiredError extends DomainError {
  readonly reason = 'CHALLENGE_EXPIRED';
  constructor(readonly id: string) {
    super('Challenge has expired.', { id });
  }
}

/** Renewal asked on a challenge without `timeout`. */
export class ChallengeNoRenewalError extends DomainError {
  readonly reason = 'CHALLENGE_NO_RENEWAL';
  constructor(readonly id: string) {
    super('Challenge does not accept renewal.', { id });
  }
}

/** `MIN_TOO_LARGE` is ours: a pool larger than the service's POOL_MAX_SIZE. */
export type PoolerViolation =
  'MIN_NEGATIVE' | 'MAX_NEGATIVE' | 'INVERTED_BOUNDARIES' | 'MIN_TOO_LARGE';

/** `min`/`max` out of bounds; metadata carries the bounds in scope, as upstream's. */
export class PoolerOutOfBoundsError extends DomainError {
  readonly reason = 'CHALLENGE_POOLER_OUT_OF_BOUNDS';
  constructor(
    readonly violations: PoolerViolation[],
    bounds: { min?: number; max?: number },
    /** The largest pool allowed, named by a MIN_TOO_LARGE violation. */
    readonly maxPoolSize?: number,
  ) {
    const metadata: Record<string, string> = {};
    if (bounds.min !== undefined) metadata.min = String(bounds.min);
    if (bounds.max !== undefined) metadata.max = String(bounds.max);
    super('Pooler configuration out of bounds.', metadata);
  }
}

/** The update mask names a path UpdateChallengeRequest does not have. */
export class InvalidUpdateMaskError extends DomainError {
  readonly reason = 'CHALLENGE_INVALID_UPDATE_MASK';
  constructor(readonly paths: string[]) {
    super('Invalid update mask.', {
      'update-mask': paths.map((p) => `paths:${JSON.stringify(p)}`).join(' '),
    });
  }
}

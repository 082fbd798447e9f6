import { DomainError } from './domain-error';

/** The source already has an instance of this challenge (clients match on "already exist"). */
export class InstanceAlreadyExistsError extends DomainError {
  readonly reason = 'INSTANCE_ALREADY_EXISTS';
  constructor(
    readonly challengeId: string,
    readonly sourceId: string,
  ) {
    super('Instance already exists.', { challenge_id: challengeId, source_id: sourceId });
  }
}

/** The source has no instance of this challenge. */
export class InstanceNotFoundError extends DomainError {
  readonly reason = 'INSTANCE_NOT_FOUND';
  constructor(
    readonly challengeId: string,
    readonly sourceId: string,
  ) {
    super('Instance not found.', { challenge_id: challengeId, source_id: sourceId });
  }
}

/** Renewal of an instance whose `until` has passed. */
export class InstanceExpiredError extends DomainError {
  readonly reason = 'INSTANCE_EXPIRED';
  constructor(
    readonly challengeId: string,
    readonly sourceId: string,
  ) {
    super("Instance can't be renewed as it expired.", {
      challenge_id: challengeId,
      source_id: sourceId,
    });
  }
}

/**
 * A new instance did not answer its readiness probes in time; it was removed. Ours, not
 * upstream's: UNAVAILABLE (HTTP 503), so clients may retry. Says nothing of the probes (they
 * hold the instance's address).
 */
export class InstanceNotReadyError extends DomainError {
  readonly reason = 'INSTANCE_NOT_READY';
  constructor(
    readonly challengeId: string,
    readonly sourceId: string | undefined,
    readonly timeoutMs: number,
  ) {
    super(`Instance did not become ready within ${formatSeconds(timeoutMs)}.`, {
      challenge_id: challengeId,
      ...(sourceId === undefined ? {} : { source_id: sourceId }),
    });
  }
}

/** 60000 → "60s", 1500 → "1.5s": the unit READINESS_TIMEOUT is usually written in. */
function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

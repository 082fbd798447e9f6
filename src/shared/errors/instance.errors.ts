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

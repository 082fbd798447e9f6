import { DomainError } from './domain-error';

/** A request that fails validation; the message names the field. Nothing was done. */
export class InvalidArgumentError extends DomainError {
  readonly reason = 'INVALID_ARGUMENT';
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`invalid ${field}: ${problem}`, { field });
  }
}

/**
 * A timeout that would put an instance's `until` past 9999-12-31T23:59:59Z, the last instant a
 * google.protobuf.Timestamp can carry (such a timeout used to be stored, and instances then
 * answered `until` in year 12027). `recorded`: the challenge already holds it (stored before
 * timeouts were checked), the request did not send it.
 */
export function timeoutPastLastTimestamp(recorded: boolean): InvalidArgumentError {
  const last = 'past 9999-12-31T23:59:59Z, the last instant a Timestamp can carry';
  return new InvalidArgumentError(
    'timeout',
    recorded
      ? `the challenge's timeout puts the instance's until ${last}; update the challenge's timeout`
      : `puts an instance's until ${last}`,
  );
}

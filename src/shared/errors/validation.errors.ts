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

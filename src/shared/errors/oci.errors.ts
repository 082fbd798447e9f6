import { DomainError } from './domain-error';

/** The scenario reference does not parse; `problem` says why (shown to the client). */
export class OciReferenceMalformedError extends DomainError {
  readonly reason = 'OCI_REFERENCE_MALFORMED';
  constructor(
    readonly reference: string,
    readonly problem: string,
  ) {
    super('OCI reference is malformed.', { reference });
  }
}

/** The registry answered, but has no such repository, tag or digest. */
export class OciReferenceNotFoundError extends DomainError {
  readonly reason = 'OCI_REFERENCE_NOT_FOUND';
  constructor(
    readonly reference: string,
    options?: { cause?: unknown },
  ) {
    super('Registry does not contain reference.', { reference }, options);
  }
}

/**
 * Talking to the registry failed. `kind` picks upstream's message and status:
 * - `unreachable`: network error (FAILED_PRECONDITION);
 * - `unauthorized`: credentials refused or missing (FAILED_PRECONDITION);
 * - `failed`: anything else, including an artifact we refuse to unpack (INTERNAL).
 */
export class OciInteractionError extends DomainError {
  readonly reason = 'OCI_INTERACTION';
  constructor(
    readonly reference: string,
    readonly kind: 'unreachable' | 'unauthorized' | 'failed',
    options?: { cause?: unknown },
  ) {
    super(
      kind === 'unreachable'
        ? 'Registry is not available. You might want to try again later.'
        : kind === 'unauthorized'
          ? 'Registry requires authentication. You may not be authorized to use it.'
          : 'OCI interaction failed.',
      { reference },
      options,
    );
  }
}

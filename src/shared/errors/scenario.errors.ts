import { DomainError } from './domain-error';

/**
 * The scenario is not a valid one: an OCI artifact we refuse to unpack (unsafe titles, digest or
 * size lies, over the limits, not a scenario at all), no Pulumi.yaml, unsupported runtime,
 * missing binary, failing preview, missing `connection_info` output. `problem` is shown to the
 * client: it is about the scenario author's own artifact or output, never the service's internals.
 */
export class ScenarioInvalidError extends DomainError {
  readonly reason = 'SCENARIO_NON_MATCHING_SPECIFICATION';
  constructor(
    readonly reference: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super('Scenario does not match specification.', { reference }, options);
  }
}

/** Preparing the scenario failed on our side (for example compiling its Go program). */
export class ScenarioPreprocessError extends DomainError {
  readonly reason = 'SCENARIO_PREPROCESSING';
  constructor(
    readonly reference: string,
    options?: { cause?: unknown },
  ) {
    // upstream sends the server-side directory as metadata; we do not leak paths.
    super('Scenario pre-processing failed.', { reference }, options);
  }
}

/**
 * A deployment (`up`, `destroy`) failed for a reason that is not the scenario's shape: provider
 * error, program crash. Clients see INTERNAL_ERROR; the cause goes to the logs.
 */
export class IacOperationError extends DomainError {
  readonly reason = 'INTERNAL_ERROR';
  constructor(
    readonly operation: 'up' | 'destroy' | 'preview' | 'import',
    readonly stackName: string,
    options?: { cause?: unknown },
  ) {
    super('An internal error occurred.', {}, options);
  }
}

/**
 * A deployment (`up`, `destroy`, preview) outlived the operation timeout and was cancelled (what
 * it created is cleaned up). Clients see DEADLINE_EXCEEDED; the cause goes to the logs.
 */
export class IacTimeoutError extends DomainError {
  readonly reason = 'IAC_TIMEOUT';
  constructor(
    readonly operation: 'up' | 'destroy' | 'preview' | 'import',
    readonly stackName: string,
    options?: { cause?: unknown },
  ) {
    super('Deployment timed out.', {}, options);
  }
}

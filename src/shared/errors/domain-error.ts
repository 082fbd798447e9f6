import type { ErrorReason } from './error-code';

/**
 * Base of every error a client may see. Services throw these; the one filter maps them to a
 * google.rpc.Status (gRPC) or its JSON (REST) through the table in error-status.ts.
 * `cause` is for the logs only and never reaches a client.
 */
export abstract class DomainError extends Error {
  abstract readonly reason: ErrorReason;

  protected constructor(
    message: string,
    /** ErrorInfo metadata, as upstream sends it. */
    readonly metadata: Readonly<Record<string, string>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

import { HttpException, HttpStatus, type LoggerService } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { DomainError } from '../errors/domain-error';
import {
  GrpcCode,
  internalErrorStatus,
  statusOfDomainError,
  type RpcStatus,
  type StatusDetail,
} from '../errors/error-status';
import { InvalidArgumentError } from '../errors/validation.errors';
import { MAX_BODY_BYTES } from './protojson';

/**
 * Turns anything thrown into the google.rpc.Status a client sees. Domain errors use
 * the table; the few errors from routing and body parsing get upstream's gateway answers; the
 * rest is hidden behind INTERNAL_ERROR (internal text never reaches a client). Every server-side fault (INTERNAL,
 * UNKNOWN, DEADLINE_EXCEEDED) is logged with its cause under a fresh `error_id`, which the client
 * gets in the ErrorInfo metadata: an operator finds the cause from what the user reports.
 */
export function toRpcStatus(error: unknown, logger: LoggerService): RpcStatus {
  const status = bounded(statusOf(error));
  if (!SERVER_FAULTS.has(status.code)) return status;
  const errorId = randomBytes(8).toString('hex');
  logFault(errorId, error, logger);
  const info = status.details.find((d) => d.type === 'ErrorInfo');
  if (info?.type === 'ErrorInfo') info.metadata = { ...info.metadata, error_id: errorId };
  return status;
}

/**
 * Longest text of a status (its message, and each string of its details), in UTF-8 bytes.
 * Statuses echo what clients sent (ids, references, masks) and what scenarios printed; over gRPC
 * all of it travels in trailers, and HTTP/2 peers refuse large header blocks (Node: 64 KiB,
 * grpc-java: 8 KiB), which stalls the connection. With this bound a status stays a few KiB.
 */
export const MAX_STATUS_TEXT_BYTES = 1024;

/** `text` cut to {@link MAX_STATUS_TEXT_BYTES}, ending with `…` when cut, never mid-character. */
export function boundText(text: string): string {
  if (Buffer.byteLength(text, 'utf8') <= MAX_STATUS_TEXT_BYTES) return text;
  const ellipsis = '…';
  const room = MAX_STATUS_TEXT_BYTES - Buffer.byteLength(ellipsis, 'utf8');
  let cut = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > room) break;
    cut += char;
    bytes += size;
  }
  return cut + ellipsis;
}

/** Every text of a status bounded by {@link boundText}. */
function bounded(status: RpcStatus): RpcStatus {
  const b = boundText;
  const detail = (d: StatusDetail): StatusDetail => {
    switch (d.type) {
      case 'ErrorInfo':
        return {
          ...d,
          metadata: Object.fromEntries(Object.entries(d.metadata).map(([k, v]) => [b(k), b(v)])),
        };
      case 'ResourceInfo':
        return {
          ...d,
          resourceType: b(d.resourceType),
          resourceName: b(d.resourceName),
          owner: b(d.owner),
          description: b(d.description),
        };
      case 'PreconditionFailure':
        return {
          ...d,
          violations: d.violations.map((v) => ({
            type: b(v.type),
            subject: b(v.subject),
            description: b(v.description),
          })),
        };
      case 'BadRequest':
        return {
          ...d,
          fieldViolations: d.fieldViolations.map((v) => ({
            field: b(v.field),
            description: b(v.description),
            reason: b(v.reason),
          })),
        };
      case 'Help':
        return {
          ...d,
          links: d.links.map((l) => ({ description: b(l.description), url: b(l.url) })),
        };
    }
  };
  return { code: status.code, message: b(status.message), details: status.details.map(detail) };
}

const SERVER_FAULTS: ReadonlySet<GrpcCode> = new Set<GrpcCode>([
  GrpcCode.UNKNOWN,
  GrpcCode.DEADLINE_EXCEEDED,
  GrpcCode.INTERNAL,
]);

function statusOf(error: unknown): RpcStatus {
  if (error instanceof DomainError) return statusOfDomainError(error);
  if (error instanceof HttpException) return statusOfHttpException(error);
  const bodyProblem = bodyParserProblem(error);
  if (bodyProblem !== undefined) {
    return statusOfDomainError(new InvalidArgumentError('body', bodyProblem));
  }
  if (error instanceof Error && error.name === 'AbortError') {
    // The caller went away; upstream answers CANCELLED with an empty message.
    return { code: GrpcCode.CANCELLED, message: '', details: [] };
  }
  return internalErrorStatus();
}

/** Exceptions Nest raises itself: unknown routes, our method fallbacks, body parsing. */
function statusOfHttpException(error: HttpException): RpcStatus {
  switch (error.getStatus() as HttpStatus) {
    // grpc-gateway's answers for an unknown route and a known path with another method.
    case HttpStatus.NOT_FOUND:
      return { code: GrpcCode.NOT_FOUND, message: 'Not Found', details: [] };
    case HttpStatus.METHOD_NOT_ALLOWED:
      return { code: GrpcCode.UNIMPLEMENTED, message: 'Method Not Allowed', details: [] };
    case HttpStatus.BAD_REQUEST: {
      // Nest maps body-parser's SyntaxError and express's URIError to BadRequestException with
      // the parser's message, which is about the client's own input.
      const field = error.message.startsWith('Failed to decode param') ? 'path' : 'body';
      const problem = field === 'body' ? `malformed JSON: ${error.message}` : error.message;
      return statusOfDomainError(new InvalidArgumentError(field, problem));
    }
    case HttpStatus.PAYLOAD_TOO_LARGE:
      return statusOfDomainError(new InvalidArgumentError('body', tooLarge()));
    default:
      return internalErrorStatus();
  }
}

/** body-parser's errors (http-errors with a `type` such as `entity.too.large`), else undefined. */
function bodyParserProblem(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { type, status, expose } = error as { type?: unknown; status?: unknown; expose?: unknown };
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  if (isDecompressionError(error)) {
    return `cannot be decompressed as its Content-Encoding says: ${error.message}`;
  }
  if (typeof type !== 'string') return undefined;
  if (type === 'entity.too.large') return tooLarge();
  // Exposed http-errors messages are written for clients ("unsupported charset", ...).
  return expose === true && error instanceof Error ? error.message : 'cannot be read';
}

/**
 * A body that is not what its Content-Encoding (gzip, deflate, br, zstd) says: body-parser
 * hands on the decompression stream's own zlib error, given a 4xx status but no `type`.
 * zlib errors carry a numeric `errno` and a string `code` (`Z_DATA_ERROR`, `Z_BUF_ERROR`,
 * `ERR__ERROR_FORMAT_…` for brotli).
 */
function isDecompressionError(error: object): error is Error {
  const { errno, code } = error as { errno?: unknown; code?: unknown };
  return (
    error instanceof Error &&
    typeof errno === 'number' &&
    typeof code === 'string' &&
    (code.startsWith('Z_') || code.startsWith('ERR_'))
  );
}

const tooLarge = (): string => `must not exceed ${MAX_BODY_BYTES} bytes`;

/** Logs with the stack and the cause chain, which never reach the client. */
function logFault(errorId: string, error: unknown, logger: LoggerService): void {
  const describe = (e: unknown): string =>
    e instanceof Error ? (e.stack ?? e.message) : inspect(e);
  const cause = error instanceof DomainError ? error.cause : undefined;
  const causeText = cause === undefined ? '' : `\ncaused by: ${describe(cause)}`;
  logger.error(`request failed (error_id=${errorId}): ${describe(error)}${causeText}`);
}

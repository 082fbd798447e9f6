import {
  ChallengeAlreadyExistsError,
  PoolerOutOfBoundsError,
  type PoolerViolation,
} from './challenge.errors';
import type { DomainError } from './domain-error';
import type { ErrorReason } from './error-code';
import { InstanceAlreadyExistsError } from './instance.errors';
import { OciInteractionError, OciReferenceMalformedError } from './oci.errors';
import { ScenarioInvalidError } from './scenario.errors';
import { InvalidArgumentError } from './validation.errors';

/**
 * The one error table: every reason to its gRPC code, message and google.rpc details, as
 * upstream chall-manager v0.6.6 sends them (its pkg/errs package). Both transports render these
 * statuses; only the encoding differs.
 */

/** gRPC status codes (google/rpc/code.proto). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/**
 * gRPC code → HTTP status, as grpc-gateway's `HTTPStatusFromCode` (and the "HTTP Mapping" lines
 * of google/rpc/code.proto). FAILED_PRECONDITION is 400 on purpose; CANCELLED is 499 as
 * code.proto says (the caller is gone by then anyway).
 */
export const HTTP_FROM_GRPC = {
  [GrpcCode.OK]: 200,
  [GrpcCode.CANCELLED]: 499,
  [GrpcCode.UNKNOWN]: 500,
  [GrpcCode.INVALID_ARGUMENT]: 400,
  [GrpcCode.DEADLINE_EXCEEDED]: 504,
  [GrpcCode.NOT_FOUND]: 404,
  [GrpcCode.ALREADY_EXISTS]: 409,
  [GrpcCode.PERMISSION_DENIED]: 403,
  [GrpcCode.RESOURCE_EXHAUSTED]: 429,
  [GrpcCode.FAILED_PRECONDITION]: 400,
  [GrpcCode.ABORTED]: 409,
  [GrpcCode.OUT_OF_RANGE]: 400,
  [GrpcCode.UNIMPLEMENTED]: 501,
  [GrpcCode.INTERNAL]: 500,
  [GrpcCode.UNAVAILABLE]: 503,
  [GrpcCode.DATA_LOSS]: 500,
  [GrpcCode.UNAUTHENTICATED]: 401,
} as const satisfies Record<GrpcCode, number>;

/** ErrorInfo.domain of every error (upstream `errs.Domain`). */
export const ERROR_DOMAIN = 'github.com/ctfer-io/chall-manager';
/** ErrorInfo.domain of upstream's registry validation errors. */
export const OCI_ERROR_DOMAIN = `${ERROR_DOMAIN}/OCI`;

/** The google.rpc error details we send (google/rpc/error_details.proto), by message name. */
export type StatusDetail =
  | { type: 'ErrorInfo'; reason: string; domain: string; metadata: Record<string, string> }
  | {
      type: 'ResourceInfo';
      resourceType: string;
      resourceName: string;
      owner: string;
      description: string;
    }
  | {
      type: 'PreconditionFailure';
      violations: { type: string; subject: string; description: string }[];
    }
  | {
      type: 'BadRequest';
      fieldViolations: { field: string; description: string; reason: string }[];
    }
  | { type: 'Help'; links: { description: string; url: string }[] };

/** A google.rpc.Status before encoding. */
export interface RpcStatus {
  code: GrpcCode;
  message: string;
  details: StatusDetail[];
}

/** What a row adds to the ErrorInfo every status starts with. */
interface Row {
  code: GrpcCode;
  /** Overrides the error's own message (used to never leak text). */
  message?: string;
  domain?: string;
  details?: StatusDetail[];
}

const INTERNAL_MESSAGE = 'An internal error occurred.';
const CHALLENGE_SUBJECT = `${ERROR_DOMAIN}/Challenge`;
const INSTANCE_SUBJECT = `${ERROR_DOMAIN}/Instance`;

const resource = (
  resourceType: string,
  resourceName: string,
  description: string,
): StatusDetail => ({ type: 'ResourceInfo', resourceType, resourceName, owner: '', description });

const precondition = (type: string, subject: string, description: string): StatusDetail => ({
  type: 'PreconditionFailure',
  violations: [{ type, subject, description }],
});

const badRequest = (field: string, reason: string, description: string): StatusDetail => ({
  type: 'BadRequest',
  fieldViolations: [{ field, description, reason }],
});

const POOLER_VIOLATIONS: Record<
  Exclude<PoolerViolation, 'MIN_TOO_LARGE'>,
  { field: string; reason: string; description: string }
> = {
  MIN_NEGATIVE: {
    field: 'min',
    reason: 'MUST_BE_POSITIVE',
    description: 'Minimum boundary must be a positive integer.',
  },
  MAX_NEGATIVE: {
    field: 'max',
    reason: 'MUST_BE_POSITIVE',
    description: 'Maximum boundary must be a positive integer.',
  },
  INVERTED_BOUNDARIES: {
    field: 'min',
    reason: 'INVERTED_BOUNDARIES',
    description: 'When an upper bound is defined, minimum cannot exceed maximum.',
  },
};

const poolerViolation = (
  v: PoolerViolation,
  maxPoolSize: number | undefined,
): { field: string; reason: string; description: string } =>
  v === 'MIN_TOO_LARGE'
    ? {
        field: 'min',
        reason: 'TOO_LARGE',
        description: `Minimum boundary cannot exceed the largest pool allowed (${maxPoolSize ?? '?'}).`,
      }
    : POOLER_VIOLATIONS[v];

const instanceName = (e: DomainError): string =>
  `${e.metadata.challenge_id ?? ''}/${e.metadata.source_id ?? ''}`;

/** Reads a field of a subclass when the error is one; the table stays total without casts. */
function fieldOf<T, R>(
  e: DomainError,
  cls: abstract new (...args: never[]) => T,
  read: (t: T) => R,
  fallback: R,
): R {
  return e instanceof cls ? read(e) : fallback;
}

/** One row per reason; a reason without a row fails the build. */
const TABLE = {
  CHALLENGE_ALREADY_EXISTS: (e) => ({
    code: GrpcCode.ALREADY_EXISTS,
    details: [
      resource(
        'Challenge',
        fieldOf(e, ChallengeAlreadyExistsError, (c) => c.id, e.metadata.id ?? ''),
        'A challenge with this ID already exists.',
      ),
    ],
  }),
  CHALLENGE_NOT_FOUND: (e) => ({
    code: GrpcCode.NOT_FOUND,
    details: [resource('Challenge', e.metadata.id ?? '', 'No challenge with this ID was found.')],
  }),
  CHALLENGE_EXPIRED: () => ({
    code: GrpcCode.FAILED_PRECONDITION,
    details: [
      precondition(
        'EXPIRATION',
        CHALLENGE_SUBJECT,
        'Challenge has expired so can no longer process instance requests.',
      ),
    ],
  }),
  CHALLENGE_NO_RENEWAL: () => ({
    code: GrpcCode.FAILED_PRECONDITION,
    details: [
      precondition(
        'RENEWAL',
        CHALLENGE_SUBJECT,
        'Challenge has no timeout thus cannot be renewed.',
      ),
    ],
  }),
  CHALLENGE_POOLER_OUT_OF_BOUNDS: (e) => ({
    code: GrpcCode.INVALID_ARGUMENT,
    details: [
      {
        type: 'BadRequest',
        fieldViolations: fieldOf(e, PoolerOutOfBoundsError, (p) => p.violations, []).map((v) =>
          poolerViolation(
            v,
            fieldOf(e, PoolerOutOfBoundsError, (p) => p.maxPoolSize, undefined),
          ),
        ),
      },
    ],
  }),
  CHALLENGE_INVALID_UPDATE_MASK: () => ({
    code: GrpcCode.INVALID_ARGUMENT,
    details: [
      badRequest('update-mask', 'INVALID_UPDATE_MASK', 'The update mask is malformed.'),
      {
        type: 'Help',
        links: [
          {
            description: 'Protocol Buffers > Well-Known Types > Field mask',
            url: 'https://protobuf.dev/reference/protobuf/google.protobuf/#field-mask',
          },
          { description: 'AIP-161 Field masks', url: 'https://google.aip.dev/161' },
        ],
      },
    ],
  }),
  INSTANCE_ALREADY_EXISTS: (e) => ({
    code: GrpcCode.ALREADY_EXISTS,
    details: [
      resource(
        'Instance',
        fieldOf(
          e,
          InstanceAlreadyExistsError,
          (i) => `${i.challengeId}/${i.sourceId}`,
          instanceName(e),
        ),
        'An instance with this ID already exists.',
      ),
    ],
  }),
  INSTANCE_NOT_FOUND: (e) => ({
    code: GrpcCode.NOT_FOUND,
    details: [resource('Instance', instanceName(e), 'No instance with this ID was found.')],
  }),
  INSTANCE_EXPIRED: () => ({
    code: GrpcCode.FAILED_PRECONDITION,
    details: [
      precondition(
        'EXPIRATION',
        INSTANCE_SUBJECT,
        'Instance has expired so can no longer process renewal request.',
      ),
    ],
  }),
  OCI_REFERENCE_MALFORMED: (e) => ({
    code: GrpcCode.INVALID_ARGUMENT,
    details: [
      resource(
        'Reference',
        e.metadata.reference ?? '',
        fieldOf(e, OciReferenceMalformedError, (o) => o.problem, ''),
      ),
      {
        type: 'Help',
        links: [
          {
            description: 'OCI Image Format specification GitHub repository.',
            url: 'https://github.com/opencontainers/image-spec',
          },
        ],
      },
    ],
  }),
  OCI_REFERENCE_NOT_FOUND: () => ({
    code: GrpcCode.INVALID_ARGUMENT,
    domain: OCI_ERROR_DOMAIN,
    details: [badRequest('scenario', 'OCI_REFERENCE_NOT_FOUND', 'Reference not found.')],
  }),
  OCI_INTERACTION: (e) => {
    switch (fieldOf(e, OciInteractionError, (o) => o.kind, 'failed')) {
      case 'unreachable':
        return {
          code: GrpcCode.FAILED_PRECONDITION,
          domain: OCI_ERROR_DOMAIN,
          details: [badRequest('scenario', 'OCI_INTERACTION', 'Registry is unreachable.')],
        };
      case 'unauthorized':
        return {
          code: GrpcCode.FAILED_PRECONDITION,
          domain: OCI_ERROR_DOMAIN,
          details: [
            badRequest(
              'scenario',
              'OCI_INTERACTION',
              'The reference of provided scenario is hosted on a registry that requires authentication, for which credentials did not match.',
            ),
          ],
        };
      case 'failed':
        return { code: GrpcCode.INTERNAL };
    }
  },
  SCENARIO_NON_MATCHING_SPECIFICATION: (e) => {
    const problem = fieldOf(e, ScenarioInvalidError, (s) => s.problem, '');
    return {
      code: GrpcCode.INVALID_ARGUMENT,
      details: [
        resource(
          'Scenario',
          e.metadata.reference ?? '',
          'A Pulumi program acting as a challenge instance deployment scenario.',
        ),
        {
          type: 'Help',
          links: [
            {
              description: 'Definition of a Scenario.',
              url: 'https://ctfer.io/docs/chall-manager/glossary/#scenario',
            },
            {
              description: 'Step-by-step guide to create a Scenario.',
              url: 'https://ctfer.io/docs/chall-manager/challmaker-guides/create-scenario/',
            },
          ],
        },
        // The scenario author's own output: theirs to read, and no internal text of ours.
        ...(problem ? [badRequest('scenario', 'VALIDATION', problem)] : []),
      ],
    };
  },
  SCENARIO_PREPROCESSING: (e) => ({
    code: GrpcCode.INTERNAL,
    details: [
      // upstream puts the raw error text here; it may hold paths and internals, so it goes to the logs.
      resource(
        'Scenario',
        e.metadata.reference ?? '',
        'Pre-processing the scenario failed; the service logs have the details.',
      ),
    ],
  }),
  INVALID_ARGUMENT: (e) => {
    const field = fieldOf(e, InvalidArgumentError, (i) => i.field, e.metadata.field ?? '');
    const problem = fieldOf(e, InvalidArgumentError, (i) => i.problem, e.message);
    return {
      code: GrpcCode.INVALID_ARGUMENT,
      details: [badRequest(field, 'INVALID_ARGUMENT', problem)],
    };
  },
  SERVICE_UNAVAILABLE: () => ({ code: GrpcCode.UNAVAILABLE }),
  IAC_TIMEOUT: () => ({ code: GrpcCode.DEADLINE_EXCEEDED }),
  FLAG_CHECK_RATE_LIMITED: () => ({ code: GrpcCode.RESOURCE_EXHAUSTED }),
  // The instance was removed: nothing is left, and a retry deploys a new one.
  INSTANCE_NOT_READY: () => ({ code: GrpcCode.UNAVAILABLE }),
  INTERNAL_ERROR: () => ({ code: GrpcCode.INTERNAL, message: INTERNAL_MESSAGE }),
} satisfies Record<ErrorReason, (e: DomainError) => Row>;

/**
 * The google.rpc.Status of a domain error: code and message from the table, then ErrorInfo
 * `{reason, domain, metadata}` followed by the row's other details.
 */
export function statusOfDomainError(error: DomainError): RpcStatus {
  const row: Row = TABLE[error.reason](error);
  const metadata = error.reason === 'INTERNAL_ERROR' ? {} : { ...error.metadata };
  return {
    code: row.code,
    message: row.message ?? error.message,
    details: [
      { type: 'ErrorInfo', reason: error.reason, domain: row.domain ?? ERROR_DOMAIN, metadata },
      ...(row.details ?? []),
    ],
  };
}

/** The status of anything unexpected: INTERNAL with the generic message and no internal text. */
export function internalErrorStatus(): RpcStatus {
  return {
    code: GrpcCode.INTERNAL,
    message: INTERNAL_MESSAGE,
    details: [{ type: 'ErrorInfo', reason: 'INTERNAL_ERROR', domain: ERROR_DOMAIN, metadata: {} }],
  };
}

import { describe, expect, it } from 'vitest';
import {
  ChallengeAlreadyExistsError,
  ChallengeExpiredError,
  ChallengeNotFoundError,
  FlagCheckRateLimitedError,
  IacOperationError,
  IacTimeoutError,
  InstanceNotReadyError,
  InstanceNotFoundError,
  InvalidArgumentError,
  InvalidUpdateMaskError,
  OciInteractionError,
  OciReferenceMalformedError,
  OciReferenceNotFoundError,
  PoolerOutOfBoundsError,
  ScenarioInvalidError,
  ScenarioPreprocessError,
} from '.';
import {
  ERROR_DOMAIN,
  GrpcCode,
  HTTP_FROM_GRPC,
  OCI_ERROR_DOMAIN,
  internalErrorStatus,
  statusOfDomainError,
} from './error-status';

describe('statusOfDomainError', () => {
  it('should answer ALREADY_EXISTS with ErrorInfo then ResourceInfo when a challenge exists', () => {
    expect(statusOfDomainError(new ChallengeAlreadyExistsError('c1'))).toEqual({
      code: GrpcCode.ALREADY_EXISTS,
      message: 'Challenge already exists.',
      details: [
        {
          type: 'ErrorInfo',
          reason: 'CHALLENGE_ALREADY_EXISTS',
          domain: ERROR_DOMAIN,
          metadata: { id: 'c1' },
        },
        {
          type: 'ResourceInfo',
          resourceType: 'Challenge',
          resourceName: 'c1',
          owner: '',
          description: 'A challenge with this ID already exists.',
        },
      ],
    });
  });

  it('should name the instance as challenge/source when it is not found', () => {
    const status = statusOfDomainError(new InstanceNotFoundError('c', 's'));
    expect(status.code).toBe(GrpcCode.NOT_FOUND);
    expect(status.details[0]).toMatchObject({ metadata: { challenge_id: 'c', source_id: 's' } });
    expect(status.details[1]).toMatchObject({ resourceType: 'Instance', resourceName: 'c/s' });
  });

  it('should answer FAILED_PRECONDITION mapped to HTTP 400 when a challenge expired', () => {
    const status = statusOfDomainError(new ChallengeExpiredError('c'));
    expect(status.code).toBe(GrpcCode.FAILED_PRECONDITION);
    expect(HTTP_FROM_GRPC[status.code]).toBe(400);
    expect(status.details[1]).toEqual({
      type: 'PreconditionFailure',
      violations: [
        {
          type: 'EXPIRATION',
          subject: `${ERROR_DOMAIN}/Challenge`,
          description: 'Challenge has expired so can no longer process instance requests.',
        },
      ],
    });
  });

  it('should list one field violation per pooler violation', () => {
    const status = statusOfDomainError(
      new PoolerOutOfBoundsError(['MIN_NEGATIVE', 'INVERTED_BOUNDARIES'], { min: -1, max: 2 }),
    );
    expect(status.code).toBe(GrpcCode.INVALID_ARGUMENT);
    expect(status.details[0]).toMatchObject({ metadata: { min: '-1', max: '2' } });
    expect(status.details[1]).toEqual({
      type: 'BadRequest',
      fieldViolations: [
        {
          field: 'min',
          reason: 'MUST_BE_POSITIVE',
          description: 'Minimum boundary must be a positive integer.',
        },
        {
          field: 'min',
          reason: 'INVERTED_BOUNDARIES',
          description: 'When an upper bound is defined, minimum cannot exceed maximum.',
        },
      ],
    });
  });

  it('should name the largest pool allowed when min exceeds it', () => {
    const status = statusOfDomainError(
      new PoolerOutOfBoundsError(['MIN_TOO_LARGE'], { min: 20000 }, 100),
    );
    expect(status.code).toBe(GrpcCode.INVALID_ARGUMENT);
    expect(status.message).toBe('Pooler configuration out of bounds.');
    expect(status.details).toEqual([
      {
        type: 'ErrorInfo',
        reason: 'CHALLENGE_POOLER_OUT_OF_BOUNDS',
        domain: ERROR_DOMAIN,
        metadata: { min: '20000' },
      },
      {
        type: 'BadRequest',
        fieldViolations: [
          {
            field: 'min',
            reason: 'TOO_LARGE',
            description: 'Minimum boundary cannot exceed the largest pool allowed (100).',
          },
        ],
      },
    ]);
  });

  it('should add the update-mask violation and two help links when the mask is invalid', () => {
    const status = statusOfDomainError(new InvalidUpdateMaskError(['nope']));
    expect(status.details.map((d) => d.type)).toEqual(['ErrorInfo', 'BadRequest', 'Help']);
    expect(status.details[0]).toMatchObject({ metadata: { 'update-mask': 'paths:"nope"' } });
  });

  it.each([
    ['unreachable', GrpcCode.FAILED_PRECONDITION, OCI_ERROR_DOMAIN, 2],
    ['unauthorized', GrpcCode.FAILED_PRECONDITION, OCI_ERROR_DOMAIN, 2],
    ['failed', GrpcCode.INTERNAL, ERROR_DOMAIN, 1],
  ] as const)(
    'should pick code and domain from the kind when OCI interaction is %s',
    (kind, code, domain, count) => {
      const status = statusOfDomainError(new OciInteractionError('r:1', kind));
      expect(status.code).toBe(code);
      expect(status.details[0]).toMatchObject({ reason: 'OCI_INTERACTION', domain });
      expect(status.details).toHaveLength(count);
    },
  );

  it('should use the OCI domain when the reference is not found', () => {
    const status = statusOfDomainError(new OciReferenceNotFoundError('r:1'));
    expect(status.code).toBe(GrpcCode.INVALID_ARGUMENT);
    expect(status.details[0]).toMatchObject({ domain: OCI_ERROR_DOMAIN });
  });

  it('should describe the parser problem when the reference is malformed', () => {
    const status = statusOfDomainError(new OciReferenceMalformedError('??', 'bad tag'));
    expect(status.details[1]).toMatchObject({ resourceType: 'Reference', description: 'bad tag' });
    expect(status.details[2]).toMatchObject({ type: 'Help' });
  });

  it('should add the scenario author output as a VALIDATION violation', () => {
    const status = statusOfDomainError(new ScenarioInvalidError('r:1', 'preview failed'));
    expect(status.details.map((d) => d.type)).toEqual([
      'ErrorInfo',
      'ResourceInfo',
      'Help',
      'BadRequest',
    ]);
    expect(status.details[3]).toMatchObject({
      fieldViolations: [{ field: 'scenario', reason: 'VALIDATION', description: 'preview failed' }],
    });
  });

  it('should not leak the cause when pre-processing fails', () => {
    const status = statusOfDomainError(
      new ScenarioPreprocessError('r:1', { cause: new Error('/secret/path') }),
    );
    expect(status.code).toBe(GrpcCode.INTERNAL);
    expect(JSON.stringify(status)).not.toContain('/secret/path');
  });

  it('should name the field when the argument is invalid', () => {
    expect(statusOfDomainError(new InvalidArgumentError('timeout', 'must be positive'))).toEqual({
      code: GrpcCode.INVALID_ARGUMENT,
      message: 'invalid timeout: must be positive',
      details: [
        {
          type: 'ErrorInfo',
          reason: 'INVALID_ARGUMENT',
          domain: ERROR_DOMAIN,
          metadata: { field: 'timeout' },
        },
        {
          type: 'BadRequest',
          fieldViolations: [
            { field: 'timeout', reason: 'INVALID_ARGUMENT', description: 'must be positive' },
          ],
        },
      ],
    });
  });

  it('should answer DEADLINE_EXCEEDED with its own reason when an IaC operation times out', () => {
    const status = statusOfDomainError(new IacTimeoutError('up', 'stack'));
    expect(status.code).toBe(GrpcCode.DEADLINE_EXCEEDED);
    expect(HTTP_FROM_GRPC[status.code]).toBe(504);
    expect(status.details).toEqual([
      { type: 'ErrorInfo', reason: 'IAC_TIMEOUT', domain: ERROR_DOMAIN, metadata: {} },
    ]);
  });

  it('should answer RESOURCE_EXHAUSTED (HTTP 429) with its own reason when a source checks too many flags', () => {
    const status = statusOfDomainError(new FlagCheckRateLimitedError('team-1', 1500));
    expect(status.code).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    expect(HTTP_FROM_GRPC[status.code]).toBe(429);
    expect(status.details).toEqual([
      {
        type: 'ErrorInfo',
        reason: 'FLAG_CHECK_RATE_LIMITED',
        domain: ERROR_DOMAIN,
        metadata: { source_id: 'team-1', retry_after: '2s' },
      },
    ]);
  });

  it('should answer UNAVAILABLE (503) naming the timeout when a new instance never became ready', () => {
    const status = statusOfDomainError(new InstanceNotReadyError('chall', 'team', 60_000));
    expect(status.code).toBe(GrpcCode.UNAVAILABLE);
    expect(HTTP_FROM_GRPC[status.code]).toBe(503);
    expect(status.message).toBe('Instance did not become ready within 60s.');
    expect(status.details).toEqual([
      {
        type: 'ErrorInfo',
        reason: 'INSTANCE_NOT_READY',
        domain: ERROR_DOMAIN,
        metadata: { challenge_id: 'chall', source_id: 'team' },
      },
    ]);
    expect(statusOfDomainError(new InstanceNotReadyError('chall', undefined, 1_500))).toMatchObject(
      {
        message: 'Instance did not become ready within 1.5s.',
        details: [{ metadata: { challenge_id: 'chall' } }],
      },
    );
  });

  it('should answer the generic internal status when an IaC operation fails', () => {
    const status = statusOfDomainError(new IacOperationError('up', 'stack'));
    expect(status).toEqual(internalErrorStatus());
    expect(status.message).toBe('An internal error occurred.');
  });

  it('should keep the upstream messages clients match on', () => {
    expect(statusOfDomainError(new ChallengeNotFoundError('x')).message).toBe(
      'Challenge not found.',
    );
  });
});

describe('HTTP_FROM_GRPC', () => {
  it('should map codes as grpc-gateway does', () => {
    expect(HTTP_FROM_GRPC[GrpcCode.CANCELLED]).toBe(499);
    expect(HTTP_FROM_GRPC[GrpcCode.UNIMPLEMENTED]).toBe(501);
    expect(HTTP_FROM_GRPC[GrpcCode.ALREADY_EXISTS]).toBe(409);
    expect(HTTP_FROM_GRPC[GrpcCode.UNAVAILABLE]).toBe(503);
  });
});

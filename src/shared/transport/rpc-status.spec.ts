import { describe, expect, it } from 'vitest';
import { ChallengeAlreadyExistsError, InvalidArgumentError } from '../errors';
import { statusOfDomainError } from '../errors/error-status';
import { decodeRpcStatus, encodeRpcStatus, rpcStatusToJson } from './rpc-status';

describe('rpcStatusToJson', () => {
  it('should write the grpc-gateway error body with @type and every field', () => {
    expect(rpcStatusToJson(statusOfDomainError(new ChallengeAlreadyExistsError('c1')))).toEqual({
      code: 6,
      message: 'Challenge already exists.',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'CHALLENGE_ALREADY_EXISTS',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { id: 'c1' },
        },
        {
          '@type': 'type.googleapis.com/google.rpc.ResourceInfo',
          resourceType: 'Challenge',
          resourceName: 'c1',
          owner: '',
          description: 'A challenge with this ID already exists.',
        },
      ],
    });
  });

  it('should emit localizedMessage as null in field violations', () => {
    const body = rpcStatusToJson(statusOfDomainError(new InvalidArgumentError('id', 'empty')));
    expect(body.details[1]).toEqual({
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: [
        { field: 'id', description: 'empty', reason: 'INVALID_ARGUMENT', localizedMessage: null },
      ],
    });
  });
});

describe('encodeRpcStatus', () => {
  it('should encode a google.rpc.Status that decodes back to the same details', () => {
    const status = statusOfDomainError(new ChallengeAlreadyExistsError('c1'));
    const decoded = decodeRpcStatus(encodeRpcStatus(status));
    expect(decoded.code).toBe(6);
    expect(decoded.message).toBe('Challenge already exists.');
    expect(decoded.details[0]).toEqual({
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'CHALLENGE_ALREADY_EXISTS',
      domain: 'github.com/ctfer-io/chall-manager',
      metadata: { id: 'c1' },
    });
    expect(decoded.details[1]).toMatchObject({ resourceType: 'Challenge', resourceName: 'c1' });
  });

  it('should keep snake_case metadata keys as they are', () => {
    const bytes = encodeRpcStatus({
      code: 5,
      message: 'x',
      details: [{ type: 'ErrorInfo', reason: 'R', domain: 'd', metadata: { challenge_id: 'c' } }],
    });
    expect(decodeRpcStatus(bytes).details[0]).toMatchObject({ metadata: { challenge_id: 'c' } });
  });
});

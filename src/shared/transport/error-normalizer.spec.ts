import type { LoggerService } from '@nestjs/common';
import { gzipSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  ChallengeNotFoundError,
  IacOperationError,
  InstanceNotFoundError,
  InvalidUpdateMaskError,
  IacTimeoutError,
  ScenarioPreprocessError,
} from '../errors';
import { GrpcCode, HTTP_FROM_GRPC } from '../errors/error-status';
import { MAX_STATUS_TEXT_BYTES, boundText, toRpcStatus } from './error-normalizer';
import { encodeRpcStatus } from './rpc-status';

/** A logger keeping its error lines. */
function recordingLogger(): LoggerService & { errors: string[] } {
  const errors: string[] = [];
  return {
    errors,
    log: () => undefined,
    warn: () => undefined,
    error: (message: unknown) => void errors.push(String(message)),
  };
}

const errorIdOf = (status: ReturnType<typeof toRpcStatus>): string | undefined => {
  const info = status.details.find((d) => d.type === 'ErrorInfo');
  return info?.type === 'ErrorInfo' ? info.metadata.error_id : undefined;
};

describe('toRpcStatus', () => {
  it('should answer DEADLINE_EXCEEDED (HTTP 504) with an error id when an IaC operation times out', () => {
    const logger = recordingLogger();
    const status = toRpcStatus(
      new IacTimeoutError('up', 'p-0123', { cause: new Error('cancelled by the CLI') }),
      logger,
    );
    expect(status.code).toBe(GrpcCode.DEADLINE_EXCEEDED);
    expect(HTTP_FROM_GRPC[status.code]).toBe(504);
    expect(status.message).toBe('Deployment timed out.');
    expect(status.details).toEqual([
      {
        type: 'ErrorInfo',
        reason: 'IAC_TIMEOUT',
        domain: 'github.com/ctfer-io/chall-manager',
        metadata: { error_id: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown },
      },
    ]);
    expect(logger.errors).toHaveLength(1);
    expect(logger.errors[0]).toContain(`error_id=${errorIdOf(status)}`);
    expect(logger.errors[0]).toContain('cancelled by the CLI');
  });

  it('should keep the program text in the log line of its error id, never in the status, when an IaC operation fails', () => {
    const logger = recordingLogger();
    const status = toRpcStatus(
      new IacOperationError('up', 'p-0123', { cause: new Error('program threw: SECRET') }),
      logger,
    );
    expect(status.code).toBe(GrpcCode.INTERNAL);
    expect(status.message).toBe('An internal error occurred.');
    expect(JSON.stringify(status)).not.toContain('SECRET');
    expect(logger.errors).toHaveLength(1);
    expect(logger.errors[0]).toContain(`error_id=${errorIdOf(status)}`);
    expect(logger.errors[0]).toContain('program threw: SECRET');
  });

  it('should give each failure its own error id', () => {
    const logger = recordingLogger();
    const a = errorIdOf(toRpcStatus(new Error('one'), logger));
    const b = errorIdOf(toRpcStatus(new ScenarioPreprocessError('r:1'), logger));
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(b).toMatch(/^[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
  });

  it('should neither log nor add an error id when the client is at fault', () => {
    const logger = recordingLogger();
    const status = toRpcStatus(new ChallengeNotFoundError('c'), logger);
    expect(errorIdOf(status)).toBeUndefined();
    expect(logger.errors).toEqual([]);
  });

  it.each([
    ['not gzip at all', Buffer.from('{"id":"c"}')],
    ['a truncated gzip stream', gzipSync(Buffer.from('{"id":"c"}')).subarray(0, 12)],
  ])(
    'should answer INVALID_ARGUMENT on the body without logging when a gzip body is %s',
    (_case, bytes) => {
      // What body-parser forwards: the gunzip stream's own error, given status 400.
      let thrown: unknown;
      try {
        gunzipSync(bytes);
      } catch (err) {
        thrown = Object.assign(err as Error, { status: 400, statusCode: 400, expose: true });
      }
      const logger = recordingLogger();
      const status = toRpcStatus(thrown, logger);
      expect(status.code).toBe(GrpcCode.INVALID_ARGUMENT);
      expect(status.message).toMatch(
        /^invalid body: cannot be decompressed as its Content-Encoding says: /,
      );
      expect(status.details).toEqual([
        {
          type: 'ErrorInfo',
          reason: 'INVALID_ARGUMENT',
          domain: 'github.com/ctfer-io/chall-manager',
          metadata: { field: 'body' },
        },
        {
          type: 'BadRequest',
          fieldViolations: [
            {
              field: 'body',
              reason: 'INVALID_ARGUMENT',
              description: expect.any(String) as unknown,
            },
          ],
        },
      ]);
      expect(logger.errors).toEqual([]);
    },
  );

  /** Every string a status holds: message, detail fields, metadata keys and values. */
  const textsOf = (value: unknown): string[] =>
    typeof value === 'string'
      ? [value]
      : value && typeof value === 'object'
        ? Object.entries(value).flatMap(([k, v]) => [k, ...textsOf(v)])
        : [];

  it.each([
    ['an unknown challenge', new ChallengeNotFoundError('x'.repeat(32 * 1024))],
    [
      'an unknown instance',
      new InstanceNotFoundError('c'.repeat(32 * 1024), 'é'.repeat(16 * 1024)),
    ],
    [
      'an unknown mask path',
      new InvalidUpdateMaskError(Array.from({ length: 5000 }, () => 'some_path')),
    ],
  ])(
    'should bound every text of the status when it echoes the huge input of %s',
    (_case, error) => {
      const status = toRpcStatus(error, recordingLogger());
      for (const text of textsOf(status)) {
        expect(Buffer.byteLength(text, 'utf8')).toBeLessThanOrEqual(MAX_STATUS_TEXT_BYTES);
      }
      // What gRPC sends as grpc-status-details-bin stays far below HTTP/2 header limits.
      expect(encodeRpcStatus(status).length).toBeLessThan(6 * 1024);
    },
  );
});

describe('boundText', () => {
  it('should keep a text up to the bound as it is', () => {
    expect(boundText('x'.repeat(MAX_STATUS_TEXT_BYTES))).toBe('x'.repeat(MAX_STATUS_TEXT_BYTES));
  });

  it('should cut a longer text to the bound with an ellipsis, between characters', () => {
    const cut = boundText('é'.repeat(MAX_STATUS_TEXT_BYTES));
    expect(cut.endsWith('é…')).toBe(true);
    expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(MAX_STATUS_TEXT_BYTES);
    expect(cut).not.toContain('\uFFFD');
    const emoji = boundText('😀'.repeat(MAX_STATUS_TEXT_BYTES));
    expect(emoji.endsWith('😀…')).toBe(true);
  });
});

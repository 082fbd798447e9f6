import { describe, expect, it } from 'vitest';
import { classifyPreface } from './single-port';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

describe('classifyPreface', () => {
  it('should route the full HTTP/2 preface to gRPC', () => {
    expect(classifyPreface(Buffer.from(`${PREFACE}\x00\x00`, 'latin1'))).toBe('grpc');
  });

  it('should wait while the bytes are still a prefix of the preface', () => {
    expect(classifyPreface(Buffer.from('PRI * HT', 'latin1'))).toBeUndefined();
    expect(classifyPreface(Buffer.alloc(0))).toBeUndefined();
  });

  it('should route HTTP/1 requests to HTTP as soon as they differ', () => {
    expect(classifyPreface(Buffer.from('G', 'latin1'))).toBe('http');
    expect(classifyPreface(Buffer.from('POST /api/v1/challenge', 'latin1'))).toBe('http');
    expect(classifyPreface(Buffer.from('PRI /x HTTP/1.1', 'latin1'))).toBe('http');
  });
});

import { describe, expect, it } from 'vitest';
import { parseReadiness, READINESS_LIMITS, readinessTarget } from './readiness';

describe('parseReadiness', () => {
  it.each([
    ['absent', undefined],
    ['null', null],
    ['an empty list', []],
  ])('should find no readiness when the output is %s', (_, output) => {
    expect(parseReadiness(output)).toEqual({ ok: true, probes: undefined });
  });

  it('should take one probe as a list of one', () => {
    expect(parseReadiness('tcp://127.0.0.1:8080')).toEqual({
      ok: true,
      probes: ['tcp://127.0.0.1:8080'],
    });
  });

  it('should keep a list of probes in order', () => {
    const probes = ['tcp://db:5432', 'http://web:80/health', 'https://[::1]:8443/'];
    expect(parseReadiness(probes)).toEqual({ ok: true, probes });
  });

  it(`should accept ${READINESS_LIMITS.maxProbes} probes of ${READINESS_LIMITS.maxProbeLength} characters`, () => {
    const base = 'http://h/';
    const long = base + 'a'.repeat(READINESS_LIMITS.maxProbeLength - base.length);
    const probes = Array.from({ length: READINESS_LIMITS.maxProbes }, () => long);
    expect(parseReadiness(probes)).toEqual({ ok: true, probes });
  });

  it.each([
    [
      'too many probes',
      Array.from({ length: READINESS_LIMITS.maxProbes + 1 }, () => 'tcp://h:1'),
      'the readiness output holds 17 probes (at most 16)',
    ],
    [
      'a probe too long',
      'http://h/' + 'a'.repeat(READINESS_LIMITS.maxProbeLength),
      'the readiness probe is longer than 2048 characters',
    ],
    ['a number', 8080, 'the readiness probe is not a string'],
    ['an object', { tcp: 'h:1' }, 'the readiness probe is not a string'],
    ['a non-string in a list', ['tcp://h:1', 2], 'readiness probe 2 is not a string'],
    ['not a URL', 'localhost:8080', 'the readiness probe has an unsupported scheme'],
    ['a bare word', 'ready', 'the readiness probe is not a URL'],
    ['another scheme', 'ftp://h/', 'the readiness probe has an unsupported scheme'],
    ['tcp without a port', 'tcp://example', 'the readiness probe has no port'],
    ['tcp with a path', 'tcp://h:1/x', 'the readiness probe has more than a host and a port'],
    ['port 0', 'tcp://h:0', 'the readiness probe has port 0'],
    ['credentials', 'http://u:p@h/', 'the readiness probe carries credentials'],
  ])('should refuse %s, saying why without echoing it', (_, output, problem) => {
    const parsed = parseReadiness(output);
    expect(parsed.ok).toBe(false);
    const text = parsed.ok ? '' : parsed.problem;
    expect(text).toContain(problem);
    if (typeof output === 'string') expect(text).not.toContain(output);
  });
});

describe('readinessTarget', () => {
  it('should connect tcp probes to their host and port, IPv6 without brackets', () => {
    expect(readinessTarget('tcp://127.0.0.1:80')).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 80,
    });
    expect(readinessTarget('tcp://[::1]:8080/')).toEqual({ kind: 'tcp', host: '::1', port: 8080 });
  });

  it('should keep http and https probes as URLs', () => {
    const target = readinessTarget('https://web.internal:8443/ready?x=1');
    expect(target).toMatchObject({ kind: 'http' });
    expect('url' in target && target.url.href).toBe('https://web.internal:8443/ready?x=1');
  });
});

import { describe, expect, it } from 'vitest';
import { OciReferenceMalformedError } from '../../shared/errors/oci.errors';
import { isSha256Digest, manifestReference, parseOciReference } from './oci-reference';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;

describe('parseOciReference', () => {
  it.each([
    // registry with port, tag given
    [
      '127.0.0.1:5000/examples/app:v1',
      { registry: '127.0.0.1:5000', repository: 'examples/app', tag: 'v1' },
    ],
    // no tag: latest
    [
      'registry.example.com/app',
      { registry: 'registry.example.com', repository: 'app', tag: 'latest' },
    ],
    // digest only: tag defaults, digest pinned
    [
      `localhost:5000/a/b@${DIGEST}`,
      { registry: 'localhost:5000', repository: 'a/b', tag: 'latest', digest: DIGEST },
    ],
    // tag and digest: both kept, the digest wins for fetching
    [
      `ghcr.io/ctfer-io/scenario:v2@${DIGEST}`,
      { registry: 'ghcr.io', repository: 'ctfer-io/scenario', tag: 'v2', digest: DIGEST },
    ],
    // every separator of the distribution grammar
    ['host/a.b_c__d--e/f', { registry: 'host', repository: 'a.b_c__d--e/f', tag: 'latest' }],
    // uppercase is fine in the host, and tags are word characters
    [
      'Registry.Local:443/app:V1.0_rc-1',
      { registry: 'Registry.Local:443', repository: 'app', tag: 'V1.0_rc-1' },
    ],
    // IPv6 host
    ['[::1]:5000/app:1', { registry: '[::1]:5000', repository: 'app', tag: '1' }],
  ])('should parse %s when it is well formed', (reference, expected) => {
    expect(parseOciReference(reference)).toEqual(expected);
  });

  it.each([
    ['', 'reference is empty'],
    ['host/app :v1', 'whitespace'],
    ['app:v1', 'missing registry'],
    ['/app', 'registry is empty'],
    ['bad_host!/app', 'registry "bad_host!" is not a valid host[:port]'],
    ['-host/app', 'not a valid host'],
    ['host:99999/app', 'port 99999 is out of range'],
    ['host/', 'repository is empty'],
    ['host/:v1', 'repository is empty'],
    ['host/a//b', 'empty path component'],
    ['host/App', 'path component "App" must be lowercase'],
    ['host/a..b', 'path component "a..b" must be lowercase alphanumerics'],
    ['host/-a', 'path component "-a"'],
    ['host/a_', 'path component "a_"'],
    ['host/app:', 'tag is empty'],
    ['host/app:-v1', 'tag "-v1"'],
    ['host/app:v+1', 'tag "v+1"'],
    [`host/app:${'t'.repeat(129)}`, 'tag "'],
    [`host/${'a'.repeat(251)}`, 'longer than 255'],
    ['host/app@', 'digest must be algorithm:hex'],
    ['host/app@sha256', 'digest must be algorithm:hex'],
    [`host/app@sha512:${'a'.repeat(128)}`, 'must be sha256, not "sha512"'],
    [`host/app@1sha:${HEX}`, 'algorithm "1sha" is invalid'],
    ['host/app@sha256:abc', '64 lowercase hex'],
    [`host/app@sha256:${'A'.repeat(64)}`, '64 lowercase hex'],
    [`host/app@${DIGEST}@${DIGEST}`, "more than one '@'"],
  ])('should refuse %j when %s', (reference, problem) => {
    let caught: unknown;
    try {
      parseOciReference(reference);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OciReferenceMalformedError);
    const error = caught as OciReferenceMalformedError;
    expect(error.reason).toBe('OCI_REFERENCE_MALFORMED');
    expect(error.reference).toBe(reference);
    expect(error.problem).toContain(problem);
  });

  it('should fetch by digest when a digest is pinned and by tag otherwise', () => {
    expect(manifestReference(parseOciReference(`h/a:v1@${DIGEST}`))).toBe(DIGEST);
    expect(manifestReference(parseOciReference('h/a:v1'))).toBe('v1');
  });

  it.each([
    [DIGEST, true],
    [`sha256:${HEX.slice(1)}`, false],
    [`sha512:${HEX}`, false],
    [HEX, false],
  ])('should say %s is a sha256 digest: %s', (value, expected) => {
    expect(isSha256Digest(value)).toBe(expected);
  });
});

import { OciReferenceMalformedError } from '../../shared/errors/oci.errors';

/** A parsed `registry/repository[:tag][@sha256:digest]` reference. */
export interface OciReference {
  /** Host, optionally with a port (`127.0.0.1:5000`, `ghcr.io`). */
  registry: string;
  /** Repository path inside the registry (`examples/app`). */
  repository: string;
  /** The tag, `latest` when none is given. */
  tag: string;
  /** `sha256:<64 hex>` when the reference pins a digest; it wins over the tag. */
  digest?: string;
}

// Grammar of github.com/distribution/reference (regexp.go), written out here so each part can
// name its own problem. Path components use `-+` as separator (distribution >= 2.8.3 / v0.5).
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST_AND_PORT = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::([0-9]+))?$`,
);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST_ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
/** distribution's NameTotalLengthMax, applied to `registry/repository`. */
const NAME_MAX_LENGTH = 255;

/** True for a well-formed `sha256:<64 lowercase hex>` digest. */
export function isSha256Digest(value: string): boolean {
  return value.startsWith('sha256:') && SHA256_HEX.test(value.slice('sha256:'.length));
}

/**
 * Parses a scenario reference: the registry is always the first path element
 * (no Docker Hub defaulting, as ORAS), the tag defaults to `latest`, a digest must be sha256.
 *
 * @throws OciReferenceMalformedError whose `problem` names the part that is wrong.
 */
export function parseOciReference(reference: string): OciReference {
  const malformed = (problem: string): OciReferenceMalformedError =>
    new OciReferenceMalformedError(reference, problem);

  if (reference.length === 0) throw malformed('reference is empty');
  if (/\s/.test(reference)) throw malformed('reference contains whitespace');

  const at = reference.indexOf('@');
  if (at !== -1 && reference.indexOf('@', at + 1) !== -1) {
    throw malformed("reference contains more than one '@'");
  }
  const namePart = at === -1 ? reference : reference.slice(0, at);
  const digest = at === -1 ? undefined : parseDigest(reference.slice(at + 1), malformed);

  const slash = namePart.indexOf('/');
  if (slash === -1) {
    throw malformed('missing registry: expected registry/repository[:tag][@sha256:digest]');
  }
  const registry = namePart.slice(0, slash);
  const remainder = namePart.slice(slash + 1);

  if (registry.length === 0) throw malformed('registry is empty');
  const host = HOST_AND_PORT.exec(registry);
  if (!host) throw malformed(`registry "${registry}" is not a valid host[:port]`);
  const port = host[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw malformed(`registry port ${port} is out of range`);
  }

  // Repository path components cannot contain ':', so the only ':' left introduces the tag.
  const colon = remainder.lastIndexOf(':');
  const repository = colon === -1 ? remainder : remainder.slice(0, colon);
  const tag = colon === -1 ? 'latest' : remainder.slice(colon + 1);

  if (repository.length === 0) throw malformed('repository is empty');
  for (const component of repository.split('/')) {
    if (component.length === 0) throw malformed('repository has an empty path component');
    if (!PATH_COMPONENT.test(component)) {
      throw malformed(
        /[A-Z]/.test(component)
          ? `repository path component "${component}" must be lowercase`
          : `repository path component "${component}" must be lowercase alphanumerics separated by '.', '_', '__' or '-'`,
      );
    }
  }
  if (registry.length + 1 + repository.length > NAME_MAX_LENGTH) {
    throw malformed(`name is longer than ${NAME_MAX_LENGTH} characters`);
  }
  if (colon !== -1) {
    if (tag.length === 0) throw malformed('tag is empty');
    if (!TAG.test(tag)) {
      throw malformed(
        `tag "${tag}" must be up to 128 word characters, '.' or '-', not starting with '.' or '-'`,
      );
    }
  }
  return digest === undefined
    ? { registry, repository, tag }
    : { registry, repository, tag, digest };
}

function parseDigest(
  value: string,
  malformed: (problem: string) => OciReferenceMalformedError,
): string {
  const colon = value.indexOf(':');
  if (colon === -1) throw malformed('digest must be algorithm:hex');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!DIGEST_ALGORITHM.test(algorithm))
    throw malformed(`digest algorithm "${algorithm}" is invalid`);
  if (algorithm !== 'sha256')
    throw malformed(`digest algorithm must be sha256, not "${algorithm}"`);
  if (!SHA256_HEX.test(hex)) throw malformed('sha256 digest must be 64 lowercase hex characters');
  return value;
}

/** What goes after `/manifests/`: the digest when pinned, else the tag. */
export function manifestReference(ref: OciReference): string {
  return ref.digest ?? ref.tag;
}

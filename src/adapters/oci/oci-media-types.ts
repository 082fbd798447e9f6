/** Media types and annotations of the scenario artifact (ORAS conventions). */
export const MEDIA_TYPE = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  empty: 'application/vnd.oci.empty.v1+json',
  scenarioArtifact: 'application/vnd.ctfer-io.scenario',
  scenarioFile: 'application/vnd.ctfer-io.file',
} as const;

/**
 * Configs that make a manifest a container image. A scenario's config is the empty one (ORAS
 * 1.1, upstream's EncodeOCI), its artifact type (ORAS 1.0 `--artifact-type`) or ORAS's
 * `application/vnd.unknown.config.v1+json`; never one of these.
 */
export const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
]);

/**
 * A container image's filesystem layers (`application/vnd.oci.image.layer.v1.tar+gzip`, docker's
 * `rootfs.diff`, …). ORAS gives a *titled* file this type when pushed without one, so only an
 * untitled layer of these types marks an image.
 */
export function isImageLayerType(mediaType: string): boolean {
  return (
    mediaType.startsWith('application/vnd.oci.image.layer.') ||
    mediaType.startsWith('application/vnd.docker.image.rootfs.')
  );
}

/**
 * Sent on every manifest request. distribution answers 404 MANIFEST_UNKNOWN to a GET without the
 * OCI types even when the manifest exists.
 */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE.ociManifest,
  MEDIA_TYPE.ociIndex,
  MEDIA_TYPE.dockerManifest,
  MEDIA_TYPE.dockerManifestList,
].join(', ');

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  created: 'org.opencontainers.image.created',
  /** ORAS marks directory layers (tar+gzip) with it; we do not unpack those. */
  orasUnpack: 'io.deis.oras.content.unpack',
} as const;

/** The empty JSON config `{}` of OCI 1.1 artifacts; the registry needs this blob pushed. */
export const EMPTY_CONFIG = {
  bytes: Buffer.from('{}'),
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
} as const;

/** distribution refuses manifests over 4 MiB; we refuse to read more than that. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

import { sha256 } from './mimic-registry';

/**
 * Pushes hand-built manifests over plain fetch to an anonymous plain-HTTP registry, the way a
 * hostile or careless author could: descriptors that lie, image configs, indexes.
 */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const EMPTY_CONFIG_DIGEST =
  'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

/** `host/repo[:tag]` → the repository's API base and the tag. */
function split(reference: string): { base: string; tag: string } {
  const [host, ...rest] = reference.split('/');
  const [name, tag = 'latest'] = rest.join('/').split(':') as [string, string?];
  return { base: `http://${host}/v2/${name}`, tag };
}

/** Uploads `bytes` as a blob of `reference`'s repository (POST then PUT ?digest=). */
export async function uploadBlob(reference: string, bytes: Buffer): Promise<string> {
  const { base } = split(reference);
  const digest = sha256(bytes);
  const post = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
  if (post.status !== 202) throw new Error(`blob upload start answered ${post.status}`);
  const url = new URL(post.headers.get('location')!, base);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', body: bytes });
  if (put.status !== 201) throw new Error(`blob upload answered ${put.status}`);
  return digest;
}

/** PUTs `manifest` under `reference`'s tag; returns its digest. */
export async function putManifest(
  reference: string,
  manifest: Record<string, unknown>,
  mediaType = OCI_MANIFEST,
): Promise<string> {
  const { base, tag } = split(reference);
  const body = Buffer.from(JSON.stringify(manifest));
  const put = await fetch(`${base}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType },
    body,
  });
  if (put.status !== 201)
    throw new Error(`manifest PUT answered ${put.status}: ${await put.text()}`);
  return sha256(body);
}

/**
 * Pushes what `docker push` would of a one-layer container image: an image config and an
 * untitled gzip filesystem layer (contents need not be a real tarball: nothing unpacks them).
 */
export async function pushContainerImage(reference: string): Promise<string> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const layer = Buffer.from('not really a tarball');
  return putManifest(reference, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: await uploadBlob(reference, config),
      size: config.byteLength,
    },
    layers: [
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: await uploadBlob(reference, layer),
        size: layer.byteLength,
      },
    ],
  });
}

/** The digest of the manifest `reference`'s tag names now, as the registry says it. */
export async function manifestDigest(reference: string): Promise<string> {
  const { base, tag } = split(reference);
  const head = await fetch(`${base}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: OCI_MANIFEST },
  });
  const digest = head.headers.get('docker-content-digest');
  if (head.status !== 200 || digest === null) {
    throw new Error(`manifest HEAD of ${reference} answered ${head.status}`);
  }
  return digest;
}

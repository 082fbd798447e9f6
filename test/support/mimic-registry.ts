import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A few lines of HTTP that answer the pull half of the distribution API from memory, for what a
 * real registry will not do: serve a blob whose bytes do not match its digest (distribution
 * verifies digests on upload), or count and slow down blob downloads.
 */
export interface MimicRegistry {
  /** host:port, plain HTTP, anonymous. */
  endpoint: string;
  /** Serves `manifest` at `repository:tag` and by its digest; returns that digest. */
  publish(repository: string, tag: string, manifest: Buffer): string;
  /**
   * Serves `files` as a scenario artifact (ORAS 1.1 layout, one titled layer per file) at
   * `repository:tag`; returns the manifest digest.
   */
  publishFiles(repository: string, tag: string, files: Record<string, Buffer>): string;
  /** Serves `bytes` as blob `digest`, whatever they hash to. */
  putBlob(digest: string, bytes: Buffer): void;
  /** GET requests on blobs so far. */
  blobGets(): number;
  /** Delay before each blob response, to make downloads overlap. */
  setBlobDelay(ms: number): void;
  /** Sends blob bodies one byte every `ms` (0: at once), as a registry dripping bytes would. */
  setBlobDrip(ms: number): void;
  /** Holds blob responses (their GET is counted) until `releaseBlobs`. */
  holdBlobs(): void;
  releaseBlobs(): void;
  stop(): Promise<void>;
}

export async function startMimicRegistry(): Promise<MimicRegistry> {
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, Buffer>();
  let blobGets = 0;
  let blobDelay = 0;
  let blobDrip = 0;
  let held: Promise<void> | undefined;
  let release = (): void => undefined;

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://mimic.local').pathname;
    if (path === '/v2/') {
      res.writeHead(200).end('{}');
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (manifest) {
      const body = manifests.get(`${manifest[1]}@${manifest[2]}`);
      if (!body) {
        res
          .writeHead(404, { 'Content-Type': 'application/json' })
          .end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
        'Content-Length': body.byteLength,
        'Docker-Content-Digest': sha256(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const blob = /^\/v2\/.+\/blobs\/([^/]+)$/.exec(path);
    const bytes = blob ? blobs.get(blob[1]!) : undefined;
    if (!bytes) {
      res
        .writeHead(404, { 'Content-Type': 'application/json' })
        .end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
      return;
    }
    if (req.method === 'GET') blobGets++;
    const gate = held ?? Promise.resolve();
    const respond = (): NodeJS.Timeout =>
      setTimeout(() => {
        res.writeHead(200, {
          'Content-Type': 'application/octet-stream',
          'Content-Length': bytes.byteLength,
        });
        if (req.method === 'HEAD' || blobDrip === 0) {
          res.end(req.method === 'HEAD' ? undefined : bytes);
          return;
        }
        let sent = 0;
        const drip = setInterval(() => {
          if (res.destroyed || sent >= bytes.byteLength) {
            clearInterval(drip);
            res.end();
            return;
          }
          res.write(bytes.subarray(sent, sent + 1));
          sent++;
        }, blobDrip);
        res.on('close', () => clearInterval(drip));
      }, blobDelay);
    void gate.then(respond);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const publish = (repository: string, tag: string, manifest: Buffer): string => {
    const digest = sha256(manifest);
    manifests.set(`${repository}@${tag}`, manifest);
    manifests.set(`${repository}@${digest}`, manifest);
    return digest;
  };

  return {
    endpoint: `127.0.0.1:${port}`,
    publish,
    publishFiles(repository, tag, files) {
      const layers = Object.entries(files).map(([title, bytes]) => {
        const digest = sha256(bytes);
        blobs.set(digest, bytes);
        return {
          mediaType: 'application/vnd.ctfer-io.file',
          digest,
          size: bytes.byteLength,
          annotations: { 'org.opencontainers.image.title': title },
        };
      });
      const empty = Buffer.from('{}');
      blobs.set(sha256(empty), empty);
      return publish(
        repository,
        tag,
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            artifactType: 'application/vnd.ctfer-io.scenario',
            config: {
              mediaType: 'application/vnd.oci.empty.v1+json',
              digest: sha256(empty),
              size: 2,
            },
            layers,
          }),
        ),
      );
    },
    putBlob(digest, bytes) {
      blobs.set(digest, bytes);
    },
    blobGets: () => blobGets,
    setBlobDelay(ms) {
      blobDelay = ms;
    },
    setBlobDrip(ms) {
      blobDrip = ms;
    },
    holdBlobs() {
      held ??= new Promise<void>((resolve) => (release = resolve));
    },
    releaseBlobs() {
      release();
      held = undefined;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

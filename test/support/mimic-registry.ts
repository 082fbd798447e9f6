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
  /** Serves `bytes` as blob `digest`, whatever they hash to. */
  putBlob(digest: string, bytes: Buffer): void;
  /** GET requests on blobs so far. */
  blobGets(): number;
  /** Delay before each blob response, to make downloads overlap. */
  setBlobDelay(ms: number): void;
  /** Sends blob bodies one byte every `ms` (0: at once), as a registry dripping bytes would. */
  setBlobDrip(ms: number): void;
  stop(): Promise<void>;
}

export async function startMimicRegistry(): Promise<MimicRegistry> {
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, Buffer>();
  let blobGets = 0;
  let blobDelay = 0;
  let blobDrip = 0;

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
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `127.0.0.1:${port}`,
    publish(repository, tag, manifest) {
      const digest = sha256(manifest);
      manifests.set(`${repository}@${tag}`, manifest);
      manifests.set(`${repository}@${digest}`, manifest);
      return digest;
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
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

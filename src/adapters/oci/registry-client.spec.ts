import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { OciInteractionError } from '../../shared/errors/oci.errors';
import { parseOciReference } from './oci-reference';
import { discard, readLimitedText, RegistryClient, type RegistryTarget } from './registry-client';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const MANIFEST = '{"schemaVersion":2}';

/** A local server that counts the connections it accepted. */
interface Counted {
  target: RegistryTarget;
  connections(): number;
}

const servers: Server[] = [];
const sockets = new Set<Socket>();

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(
    servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
});

async function listen(server: Server): Promise<Counted> {
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const reference = `127.0.0.1:${(server.address() as AddressInfo).port}/scenario:v1`;
  return {
    target: { reference, ref: parseOciReference(reference) },
    connections: () => connections,
  };
}

/** A registry of one manifest: HEAD and GET answer as distribution does. */
function manifestAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
    'Content-Length': Buffer.byteLength(MANIFEST),
    'Docker-Content-Digest': DIGEST,
  });
  res.end(req.method === 'HEAD' ? undefined : MANIFEST);
}

function client(requestTimeoutMs = 30_000): RegistryClient {
  return new RegistryClient({ insecure: true, requestTimeoutMs });
}

/** A HEAD of the manifest, as resolving a tag sends it; returns its status and digest. */
async function head(
  registry: RegistryClient,
  target: RegistryTarget,
  signal?: AbortSignal,
): Promise<[number, string | null]> {
  const exchange = await registry.send(
    target,
    { method: 'HEAD', path: 'manifests/v1', action: 'pull' },
    signal,
  );
  await discard(exchange);
  return [exchange.response.status, exchange.response.headers.get('docker-content-digest')];
}

async function get(registry: RegistryClient, target: RegistryTarget): Promise<string> {
  const exchange = await registry.send(target, {
    method: 'GET',
    path: 'manifests/v1',
    action: 'pull',
  });
  return readLimitedText(exchange, 1024);
}

async function expectUnreachable(pending: Promise<unknown>): Promise<void> {
  const err: unknown = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OciInteractionError);
  expect((err as OciInteractionError).kind).toBe('unreachable');
}

// undici hands a connection back to its pool one turn of the event loop after the answer (to see
// a server that closes it despite saying it would not); requests that come apart, as the API's
// calls do, wait that turn here.
describe('RegistryClient connections', () => {
  it('should send HEADs in a row over one connection', async () => {
    const server = await listen(createHttpServer(manifestAnswer));
    const registry = client();

    for (let i = 0; i < 5; i++) {
      expect(await head(registry, server.target)).toEqual([200, DIGEST]);
      await nextTurn();
    }

    expect(server.connections()).toBe(1);
  });

  it('should answer the GET after a HEAD over the HEAD connection', async () => {
    const server = await listen(createHttpServer(manifestAnswer));
    const registry = client();

    await head(registry, server.target);
    await nextTurn();

    expect(await get(registry, server.target)).toBe(MANIFEST);
    expect(server.connections()).toBe(1);
  });

  it('should answer the next HEAD when one timed out', async () => {
    let stall = true;
    const server = await listen(
      createHttpServer((req, res) => {
        if (stall) {
          stall = false;
          return;
        }
        manifestAnswer(req, res);
      }),
    );
    const registry = client(200);

    await expectUnreachable(head(registry, server.target));

    expect(await head(registry, server.target)).toEqual([200, DIGEST]);
  });

  it('should answer the next HEAD when the caller aborted one', async () => {
    const held: ServerResponse[] = [];
    const server = await listen(
      createHttpServer((req, res) => {
        if (held.length === 0) held.push(res);
        else manifestAnswer(req, res);
      }),
    );
    const registry = client();
    const controller = new AbortController();

    const pending = head(registry, server.target, controller.signal);
    await expect.poll(() => held.length).toBe(1);
    controller.abort(new Error('cancelled'));

    await expect(pending).rejects.toThrow('cancelled');
    expect(await head(registry, server.target)).toEqual([200, DIGEST]);
  });

  it('should answer the next HEAD when the registry cut one off before its headers ended', async () => {
    let cut = true;
    const server = await listen(
      createTcpServer((socket) => {
        socket.once('data', () => {
          if (cut) {
            cut = false;
            socket.end('HTTP/1.1 200 OK\r\nContent-Len');
            return;
          }
          socket.write(
            `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDocker-Content-Digest: ${DIGEST}\r\n\r\n`,
          );
        });
      }),
    );
    const registry = client();

    await expectUnreachable(head(registry, server.target));

    expect(await head(registry, server.target)).toEqual([200, DIGEST]);
  });

  it('should answer the GET after a HEAD whose answer came with a body, with its own body', async () => {
    // RFC 9110 forbids a body after a HEAD's headers; a server that sends one anyway must not
    // have it read as the answer to the next request.
    const server = await listen(
      createTcpServer((socket) => {
        socket.on('data', (data) => {
          const body = data.toString('latin1').startsWith('HEAD') ? 'stray' : MANIFEST;
          socket.write(
            `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nDocker-Content-Digest: ${DIGEST}\r\n\r\n${body}`,
          );
        });
      }),
    );
    const registry = client();

    expect(await head(registry, server.target)).toEqual([200, DIGEST]);
    await nextTurn();

    expect(await get(registry, server.target)).toBe(MANIFEST);
  });
});

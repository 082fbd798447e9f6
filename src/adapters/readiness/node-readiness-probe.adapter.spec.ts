import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeReadinessProbe } from './node-readiness-probe.adapter';

const BOUNDS = { readyTimeoutMs: 60_000, claimTimeoutMs: 2_000 };
/** Short pauses: a probe that cannot succeed gives up within a fraction of a second. */
const probe = new NodeReadinessProbe({
  bounds: BOUNDS,
  attemptTimeoutMs: 200,
  minBackoffMs: 10,
  maxBackoffMs: 50,
});

const servers: (Server | HttpServer)[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
});

function listen<S extends Server | HttpServer>(server: S, port = 0): Promise<number> {
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  servers.splice(servers.indexOf(server), 1);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An HTTP server answering the statuses in turn (the last one from then on); counts requests. */
async function httpAnswering(
  ...statuses: number[]
): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createHttpServer((_req, res) => {
    const status = statuses[Math.min(requests, statuses.length - 1)]!;
    requests++;
    res.writeHead(status, status >= 300 && status < 400 ? { location: '/elsewhere' } : {});
    res.end();
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}/ready`, requests: () => requests };
}

describe('NodeReadinessProbe', () => {
  it('should expose the bounds it was given', () => {
    expect(probe.bounds).toEqual(BOUNDS);
  });

  it('should be ready at once with no probe', async () => {
    expect(await probe.waitReady([], 0)).toBeUndefined();
  });

  it('should be ready when a tcp probe connects', async () => {
    const port = await listen(createServer((c) => c.end()));
    expect(await probe.waitReady([`tcp://127.0.0.1:${port}`], 5_000)).toBeUndefined();
  });

  it('should close what answered gracefully: a service writing a banner sees no reset', async () => {
    const errors: string[] = [];
    let closed!: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    const port = await listen(
      createServer((c) => {
        c.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
        c.on('close', () => closed());
        c.end('FLAG{banner}\n');
      }),
    );
    expect(await probe.waitReady([`tcp://127.0.0.1:${port}`], 5_000)).toBeUndefined();
    await done;
    expect(errors).toEqual([]);
  });

  it('should not be ready when nothing listens, naming the probe by position and the error', async () => {
    const port = await closedPort();
    expect(await probe.waitReady([`tcp://127.0.0.1:${port}`], 300)).toEqual({
      failing: [1],
      lastError: 'ECONNREFUSED',
    });
  });

  it('should keep trying until the service starts listening', async () => {
    const port = await closedPort();
    const server = createServer((c) => c.end());
    let attempts = 0;
    // The service comes up once the probe has been refused a few times.
    const watcher = setInterval(() => {
      attempts++;
      if (attempts === 3) void listen(server, port);
    }, 50);
    try {
      expect(await probe.waitReady([`tcp://127.0.0.1:${port}`], 10_000)).toBeUndefined();
    } finally {
      clearInterval(watcher);
    }
    expect(attempts).toBeGreaterThanOrEqual(3);
  });

  it.each([200, 204, 301, 302, 307])(
    'should be ready when an http probe answers %i',
    async (status) => {
      const { url } = await httpAnswering(status);
      expect(await probe.waitReady([url], 5_000)).toBeUndefined();
    },
  );

  it.each([404, 500, 503])('should not be ready while an http probe answers %i', async (status) => {
    const { url, requests } = await httpAnswering(status);
    expect(await probe.waitReady([url], 300)).toEqual({
      failing: [1],
      lastError: `HTTP ${status}`,
    });
    expect(requests()).toBeGreaterThan(1);
  });

  it('should be ready once an http probe stops answering 503', async () => {
    const { url, requests } = await httpAnswering(503, 503, 200);
    expect(await probe.waitReady([url], 10_000)).toBeUndefined();
    expect(requests()).toBe(3);
  });

  it('should give up an attempt that gets no answer and say so', async () => {
    // Accepts the connection, never answers the request.
    const held: Socket[] = [];
    const port = await listen(createServer((c) => held.push(c)));
    const notReady = await probe.waitReady([`http://127.0.0.1:${port}/`], 500);
    for (const c of held) c.destroy();
    expect(held.length).toBeGreaterThan(0);
    expect(notReady?.failing).toEqual([1]);
    expect(notReady?.lastError).toMatch(/^no answer within \d+ ms$/);
  });

  it('should want every probe to answer, and list those that did not', async () => {
    const up = await listen(createServer((c) => c.end()));
    const { url: ok } = await httpAnswering(200);
    const down = await closedPort();
    const { url: failing } = await httpAnswering(503);
    expect(
      await probe.waitReady([`tcp://127.0.0.1:${up}`, `tcp://127.0.0.1:${down}`, ok, failing], 300),
    ).toEqual({ failing: [2, 4], lastError: 'ECONNREFUSED' });
  });

  it('should never put the probe in what it reports', async () => {
    const notReady = await probe.waitReady(['http://no-such-host.invalid:8080/secret-path'], 300);
    expect(notReady?.failing).toEqual([1]);
    expect(notReady?.lastError).not.toMatch(/no-such-host|secret-path|8080/);
  });

  it('should stop and reject with the reason when the signal aborts', async () => {
    const port = await closedPort();
    const controller = new AbortController();
    const waiting = probe.waitReady([`tcp://127.0.0.1:${port}`], 60_000, controller.signal);
    setTimeout(() => controller.abort(new Error('caller gone')), 50);
    await expect(waiting).rejects.toThrow('caller gone');
  });

  it('should reject at once when the signal already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    await expect(probe.waitReady(['tcp://127.0.0.1:1'], 1_000, controller.signal)).rejects.toThrow(
      'too late',
    );
  });
});

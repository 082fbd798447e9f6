import type { ServiceError } from '@grpc/grpc-js';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { AppModule } from '../../src/app.module';
import { AppConfig } from '../../src/config';
import { createLogger } from '../../src/shared/logging';
import { API_APP_OPTIONS, startApiServer } from '../../src/shared/transport';
import type { RpcStatusJson } from '../../src/shared/transport/rpc-status';
import { connectApiClients, statusDetails, type ApiClients } from './grpc-client';
import { freePort } from './services';

/**
 * The whole service, wired as `src/main.ts` wires it (real Pulumi, real registry, real files),
 * on a free port of 127.0.0.1, with clients for both transports.
 */
export interface ApiApp {
  app: NestExpressApplication;
  /** http://127.0.0.1:<port> */
  base: string;
  /** 127.0.0.1:<port> */
  address: string;
  /** The service's DIR and CACHE. */
  dir: string;
  cache: string;
  /** Scratch directory of the test (DIR and CACHE are inside); removed on close. */
  scratch: string;
  grpc: ApiClients;
  /** fetch() against the service. */
  rest(path: string, init?: RequestInit): Promise<Response>;
  /** What this process wrote on stdout and stderr since the service booted (its log lines). */
  logs(): string;
  close(): Promise<void>;
}

/** Everything written on stdout and stderr since the first boot; still written through. */
let captured = '';
let capturing = false;
function captureOutput(): void {
  if (capturing) return;
  capturing = true;
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = (chunk: unknown, ...rest: unknown[]): boolean => {
      captured += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString();
      return write(chunk, ...rest);
    };
  }
}

/**
 * Boots the service with OCI_INSECURE, a temp DIR and CACHE, a free PORT and an IAC_TIMEOUT of a
 * few minutes; `env` overrides or adds variables. Logs only errors unless CM_TEST_LOG_LEVEL says.
 */
export async function bootApiApp(env: Record<string, string> = {}): Promise<ApiApp> {
  captureOutput();
  const logStart = captured.length;
  const scratch = mkdtempSync(join(tmpdir(), 'cm-api-e2e-'));
  const port = await freePort();
  const dir = join(scratch, 'data');
  const cache = join(scratch, 'cache');
  const config = AppConfig.fromEnv({
    ...process.env,
    PORT: String(port),
    DIR: dir,
    CACHE: cache,
    OCI_INSECURE: 'true',
    IAC_TIMEOUT: '4m',
    LOG_LEVEL: process.env.CM_TEST_LOG_LEVEL ?? 'error',
    ...env,
  });
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    ...API_APP_OPTIONS,
    logger: createLogger(config.logLevel),
  });
  await startApiServer(app, port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  const address = `127.0.0.1:${port}`;
  const grpc = connectApiClients(address);
  return {
    app,
    base,
    address,
    dir,
    cache,
    scratch,
    grpc,
    rest: (path, init) => fetch(`${base}${path}`, init),
    logs: () => captured.slice(logStart),
    close: async () => {
      grpc.close();
      await app.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** A JSON request init (a string body is sent as is). */
export function jsonInit(method: string, body?: unknown): RequestInit {
  return {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  };
}

/** The `{"result": …}` / `{"error": …}` lines of a streamed REST answer. */
export async function ndjson(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The error of a gRPC call expected to fail (fails the test if it succeeded). */
export async function grpcError(call: Promise<unknown>): Promise<ServiceError> {
  const outcome = await call.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  if (outcome.ok) throw new Error(`expected a gRPC error, got ${JSON.stringify(outcome.value)}`);
  return outcome.err as ServiceError;
}

/** The google.rpc.Status of a gRPC error (from grpc-status-details-bin). */
export function grpcStatusOf(err: ServiceError): RpcStatusJson | undefined {
  return statusDetails(err.metadata);
}

/** Milliseconds since the epoch of a proto-loader Timestamp `{seconds, nanos}`. */
export function timestampMs(t: unknown): number {
  const { seconds, nanos } = t as { seconds: string | number; nanos: number };
  return Number(seconds) * 1000 + Math.floor(nanos / 1e6);
}

/** `nc <host> <port>` → host and port. */
export function ncTarget(connectionInfo: string): { host: string; port: number } {
  const m = /^nc (\S+) (\d+)$/.exec(connectionInfo.trim());
  if (!m) throw new Error(`not an "nc host port" connection info: ${connectionInfo}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Connects to an `nc host port` connection info and reads what the service says, trimmed. */
export function readBanner(connectionInfo: string, timeoutMs = 10_000): Promise<string> {
  const { host, port } = ncTarget(connectionInfo);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${host}:${port} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(data.trim());
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Whether `host:port` refuses a TCP connection right now. */
function refusesTcp(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/**
 * Whether nothing accepts TCP connections on the connection info's port, waiting up to
 * `withinMs` for a server that is going away to stop listening.
 */
export async function tcpClosed(connectionInfo: string, withinMs = 10_000): Promise<boolean> {
  const { host, port } = ncTarget(connectionInfo);
  try {
    await eventually(`${host}:${port} refuses connections`, withinMs, () => refusesTcp(host, port));
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until `check` holds (asked every 200 ms, each answer awaited); fails after `withinMs`
 * naming `what`, with `detail()` (a log tail, the last state seen) to tell why. A `check` that
 * throws fails the wait at once: it saw something that waiting will not mend.
 */
export async function eventually(
  what: string,
  withinMs: number,
  check: () => Promise<boolean> | boolean,
  detail: () => string = () => '',
): Promise<void> {
  const NOT_YET = new Error(`not yet: ${what}`);
  const outcome = await vi
    .waitFor(
      async () => {
        const held = await Promise.resolve()
          .then(check)
          .then(
            (ok) => ok,
            (err: unknown) => ({ failed: err }),
          );
        if (held === false) throw NOT_YET;
        return held;
      },
      { timeout: withinMs, interval: 200 },
    )
    .catch((err: unknown) => {
      throw new Error(`not within ${withinMs} ms: ${what}\n${detail()}`, { cause: err });
    });
  if (outcome !== true) throw outcome.failed;
}

import {
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type NestApplicationOptions,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { AppConfig } from '../../config';
import { GrpcConnectionSink } from './grpc-connection-sink';
import { grpcOptions } from './grpc.options';
import { MAX_BODY_BYTES } from './protojson';

/**
 * One port for gRPC and REST, as upstream (cmux) serves them, so existing clients keep one address.
 *
 * Every accepted TCP connection is peeked: a client that opens with the HTTP/2 connection
 * preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, which gRPC clients send over plaintext) is handed
 * to the grpc-js server through its connection injector; anything else is handed to Nest's
 * express HTTP server (`emit('connection')`). The peeked bytes are pushed back (`unshift`) before
 * the handover, so each server reads the connection from its first byte. No second port, no
 * proxying: each connection is served by exactly one in-process server.
 *
 * An HTTP/2 connection without gRPC (REST over h2c) reaches grpc-js too, which answers its
 * requests with HTTP 415 instead of crashing; our REST API is HTTP/1.1, as upstream's.
 */

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** A client that sends nothing for this long is dropped before it is routed. */
const PEEK_TIMEOUT_MS = 30_000;
/**
 * How long open connections may finish on close (after the drain: see graceful-shutdown.ts).
 */
const CLOSE_GRACE_MS = 5_000;

/** Options for NestFactory.create / createNestApplication: we register our own body parser. */
export const API_APP_OPTIONS: NestApplicationOptions = { bodyParser: false };

/** Which server a connection's first bytes belong to, or undefined while they could be either. */
export function classifyPreface(head: Buffer): 'grpc' | 'http' | undefined {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (!head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return 'http';
  return head.length >= H2_PREFACE.length ? 'grpc' : undefined;
}

/** The public listener; a provider so that Nest's shutdown closes it with the app. */
@Injectable()
export class SinglePortServer implements BeforeApplicationShutdown, OnApplicationShutdown {
  /** Where HTTP/2 connections go; its options are built by {@link grpcOptions}. */
  readonly grpc = new GrpcConnectionSink();
  private readonly logger = new Logger('Transport');
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /**
   * Listens on the public port (host: all interfaces unless given).
   * @returns the bound address (useful with port 0).
   */
  async listen(port: number, host?: string): Promise<AddressInfo> {
    const http = this.adapterHost.httpAdapter.getHttpServer() as HttpServer;
    // No Nagle: HTTP/2 writes an answer as several small frames (headers, data, trailers), and
    // a frame held back until the client's delayed ACK costs up to 40 ms per gRPC call. The
    // http and grpc-js servers never see the accept, so they cannot set it themselves.
    const server = createServer({ noDelay: true }, (socket) => this.route(socket, http));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // http.Server starts tracking its connections (headers and request timeouts,
    // closeIdleConnections) on 'listening'. It never listens itself here, so tell it that its
    // connections can now arrive.
    http.emit('listening');
    return server.address() as AddressInfo;
  }

  /** Peeks the first bytes of a connection and hands it to gRPC or HTTP. */
  private route(socket: Socket, http: HttpServer): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), PEEK_TIMEOUT_MS);
    // Until a server owns the socket, a reset is ours to absorb.
    const onError = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const target = classifyPreface(head);
      if (target === undefined) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.pause();
      socket.unshift(head);
      if (target === 'http') {
        http.emit('connection', socket);
        socket.resume();
      } else if (!this.grpc.inject(socket)) {
        socket.destroy();
      }
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('end', () => clearTimeout(timer));
  }

  /**
   * Stops accepting, lets idle HTTP/1 connections go, and shuts gRPC down gracefully (GOAWAY)
   * before Nest's own close of the gRPC server, which would cancel open streams at once.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.server?.close();
    const http = this.adapterHost.httpAdapter?.getHttpServer() as HttpServer | undefined;
    http?.closeIdleConnections();
    await this.grpc.shutdown(CLOSE_GRACE_MS);
  }

  /** Gives busy connections a short grace, then cuts what is left. */
  async onApplicationShutdown(): Promise<void> {
    const http = this.adapterHost.httpAdapter?.getHttpServer() as HttpServer | undefined;
    const deadline = Date.now() + CLOSE_GRACE_MS;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      // Keep-alive connections become idle as their last response ends.
      http?.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const socket of this.sockets) socket.destroy();
    this.grpc.removeBindDir();
  }
}

/**
 * Steps 3-6 of the bootstrap (see main.ts) on an app created with {@link API_APP_OPTIONS}: body
 * parser (JSON of any content type, as the gateway, up to 1 MiB), Swagger when configured, the
 * gRPC microservice sharing the app's filters, then the one public port.
 * @returns the bound address.
 */
export async function startApiServer(
  app: NestExpressApplication,
  port: number,
  host?: string,
): Promise<AddressInfo> {
  // upstream's Go server sends no such header; nobody needs to know what serves the API.
  app.disable('x-powered-by');
  app.useBodyParser('json', { limit: MAX_BODY_BYTES, type: () => true });
  // Loaded only when served: @nestjs/swagger and the document cost memory and start-up time.
  if (app.get(AppConfig).swagger) (await import('./swagger/swagger')).setupSwagger(app);
  const singlePort = app.get(SinglePortServer);
  app.connectMicroservice(grpcOptions(singlePort.grpc), { inheritAppConfig: true });
  await app.init();
  await app.startAllMicroservices();
  return singlePort.listen(port, host);
}

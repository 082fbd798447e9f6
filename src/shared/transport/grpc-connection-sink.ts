// Shared code speaks grpc-js only here and in grpc-error.ts: injecting connections needs the
// grpc-js Server and ServerCredentials classes themselves.
// eslint-disable-next-line no-restricted-imports
import { Server, ServerCredentials, type ConnectionInjector } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';

/**
 * Where the single-port server hands HTTP/2 connections: the grpc-js server behind Nest's gRPC
 * microservice, through grpc-js's connection injector (`Server.createConnectionInjector`).
 */
export class GrpcConnectionSink {
  /** A unix socket in a fresh 0700 directory: Nest must bind something, nobody can reach it. */
  readonly bindUrl: string;
  private readonly bindDir: string;
  private injector: ConnectionInjector | undefined;
  private server: Server | undefined;
  /** Connections handed to gRPC and not closed yet: shutdown waits for these. */
  private readonly connections = new Set<Duplex>();

  constructor() {
    this.bindDir = mkdtempSync(join(tmpdir(), 'cm-grpc-'));
    this.bindUrl = `unix:${join(this.bindDir, 'grpc.sock')}`;
  }

  /** Called by Nest with its grpc-js server, once bound and before services are added. */
  attach(server: unknown): void {
    if (!(server instanceof Server)) {
      throw new TypeError('the gRPC microservice did not hand over a grpc-js Server');
    }
    this.server = server;
    this.injector = server.createConnectionInjector(ServerCredentials.createInsecure());
    // The injector is all we need; stop listening on the private socket and remove it.
    server.unbind(this.bindUrl);
    this.removeBindDir();
  }

  /** Whether the gRPC server is ready to take connections. */
  get ready(): boolean {
    return this.injector !== undefined;
  }

  /**
   * Hands a client connection (preface bytes still unread) to the gRPC server.
   * @returns false when the gRPC server is not started.
   */
  inject(connection: Duplex): boolean {
    if (!this.injector) return false;
    this.connections.add(connection);
    connection.once('close', () => this.connections.delete(connection));
    this.injector.injectConnection(connection);
    return true;
  }

  /**
   * gRPC's graceful shutdown: GOAWAY on every connection (clients reconnect elsewhere for their
   * next call), then waits for the streams still open to end; past `graceMs` they are cancelled.
   * By the time it is called the calls in flight have drained, so it is normally immediate.
   */
  async shutdown(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.injector = undefined;
    const deadline = Date.now() + graceMs;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // tryShutdown's callback is not the end of the streams: it counts a session whose close has
    // begun (Node's http2 server close begins every session's) as closed at once, and what
    // follows it (Nest's forceShutdown) would reset streams still sending their answer; the
    // client sees CANCELLED. A connection closes once its session has ended every stream.
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (this.connections.size > 0) server.forceShutdown();
  }

  /** Removes the private directory (idempotent; also used when the server never started). */
  removeBindDir(): void {
    rmSync(this.bindDir, { recursive: true, force: true });
  }
}

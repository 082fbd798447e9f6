import {
  credentials,
  loadPackageDefinition,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { CLIENT_LOADER_OPTIONS } from './grpc-client';

/** An event as a client sees it, on either transport: the JSON of SSE and webhooks, or gRPC's. */
export interface SeenEvent {
  id: number;
  type: string;
  challengeId: string;
  sourceId: string;
  identity: string;
  /** Milliseconds since the epoch. */
  time: number;
  /** Every field the message carried, as received. */
  raw: Record<string, unknown>;
}

function fromJson(raw: Record<string, unknown>): SeenEvent {
  return {
    id: Number(raw.id),
    type: String(raw.type),
    challengeId: String(raw.challengeId),
    sourceId: String(raw.sourceId),
    identity: String(raw.identity),
    time: Date.parse(String(raw.time)),
    raw,
  };
}

/**
 * A Server-Sent Events client of `GET /api/v1/events` over fetch, as an EventSource reads it:
 * `id:`/`data:` blocks become events, `:` lines are comments (keep-alives).
 */
export class SseClient {
  readonly events: SeenEvent[] = [];
  /** Comment lines received (keep-alives). */
  comments = 0;
  status = 0;
  contentType = '';
  /** Ended by the server (not by close()). */
  ended = false;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  private constructor(res: Response) {
    this.status = res.status;
    this.contentType = res.headers.get('content-type') ?? '';
    this.done = this.read(res);
  }

  /** Connects and waits for the response headers. */
  static async open(
    base: string,
    query = '',
    headers: Record<string, string> = {},
  ): Promise<SseClient> {
    const abort = new AbortController();
    const res = await fetch(`${base}/api/v1/events${query}`, {
      headers: { Accept: 'text/event-stream', ...headers },
      signal: abort.signal,
    });
    const client = new SseClient(res);
    client.abort.signal.addEventListener('abort', () => abort.abort(), { once: true });
    return client;
  }

  /** The id of the last event received (what an EventSource sends back as Last-Event-ID). */
  get lastEventId(): string {
    return String(this.events.at(-1)?.id ?? '');
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  private async read(res: Response): Promise<void> {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.block(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
      this.ended = true;
    } catch {
      // closed by close()
    }
  }

  private block(block: string): void {
    const data: string[] = [];
    let event = 'message';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      else if (line.startsWith('event:')) event = line.slice(6).trim();
    }
    if (data.length === 0) return;
    if (event !== 'message') throw new Error(`unexpected SSE event ${event}: ${data.join('\n')}`);
    this.events.push(fromJson(JSON.parse(data.join('\n')) as Record<string, unknown>));
  }
}

/** A gRPC watcher of `api.v1.event.EventStream.Watch`, loaded from our proto as a client would. */
export class GrpcWatcher {
  readonly events: SeenEvent[] = [];
  error: ServiceError | undefined;
  ended = false;
  /** Resolves with the response headers: the server has read where the watch starts. */
  readonly ready: Promise<void>;
  private readonly client: InstanceType<ServiceClientConstructor>;
  private readonly call: ClientReadableStream<Record<string, unknown>>;

  constructor(address: string, request: object) {
    const definition = loadSync(['api/v1/event/event.proto'], CLIENT_LOADER_OPTIONS);
    const root = loadPackageDefinition(definition);
    const Service = ((root.api as GrpcObject).v1 as GrpcObject).event as GrpcObject;
    const Client = Service.EventStream as ServiceClientConstructor;
    this.client = new Client(address, credentials.createInsecure());
    const watch = this.client.watch as (
      req: object,
    ) => ClientReadableStream<Record<string, unknown>>;
    this.call = watch.call(this.client, request);
    this.ready = new Promise((resolve, reject) => {
      this.call.once('metadata', () => resolve());
      this.call.once('error', reject);
    });
    this.call.on('data', (m: Record<string, unknown>) => {
      const time = m.time as { seconds: string; nanos: number };
      this.events.push({
        id: Number(m.id),
        type: String(m.type),
        challengeId: String(m.challengeId),
        sourceId: String(m.sourceId),
        identity: String(m.identity),
        time: Number(time.seconds) * 1000 + Math.floor(time.nanos / 1e6),
        raw: m,
      });
    });
    this.call.on('error', (err: ServiceError) => (this.error = err));
    this.call.on('end', () => (this.ended = true));
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** One POST the webhook receiver got. */
export interface Delivery {
  body: string;
  headers: IncomingHttpHeaders;
  /** What the receiver answered. */
  answered: number;
}

/**
 * A webhook receiver on 127.0.0.1: answers 503 to its first `failFirst` deliveries, then 204.
 */
export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  url = '';
  private readonly server: Server;

  private constructor(failFirst: number) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answered = this.deliveries.length < failFirst ? 503 : 204;
        const body = Buffer.concat(chunks).toString('utf8');
        this.deliveries.push({ body, headers: req.headers, answered });
        res.statusCode = answered;
        res.end();
      });
    });
  }

  static async start(failFirst: number): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(failFirst);
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    const address = receiver.server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    receiver.url = `http://127.0.0.1:${address.port}/hook`;
    return receiver;
  }

  /** The events it accepted (2xx), in the order it accepted them. */
  accepted(): SeenEvent[] {
    return this.deliveries
      .filter((d) => d.answered < 300)
      .map((d) => fromJson(JSON.parse(d.body) as Record<string, unknown>));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Whether `header` is `sha256=<hex HMAC-SHA256 of body with secret>`. */
export function validSignature(body: string, header: unknown, secret: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  const got = Buffer.from(header.slice('sha256='.length), 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

import { DomainError } from '../../shared/errors/domain-error';
import { OciInteractionError, OciReferenceNotFoundError } from '../../shared/errors/oci.errors';
import { ScenarioInvalidError } from '../../shared/errors/scenario.errors';
import type { OciReference } from './oci-reference';
import { ArtifactRefusedError } from './scenario-files';

/** The reference as the caller wrote it (for errors) and parsed (for URLs). */
export interface RegistryTarget {
  reference: string;
  ref: OciReference;
}

/** Push requests need a token with `push` in its scope; the cache of credentials keys on it. */
export type RegistryAction = 'pull' | 'push';

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  /** Relative to `/v2/<repository>/`, e.g. `manifests/v1`; or `url` (an upload Location). */
  path?: string;
  url?: URL;
  headers?: Record<string, string>;
  /** A buffer, so the request can be replayed after an auth challenge. */
  body?: Buffer;
  action: RegistryAction;
}

/** One answered request. `done` must be called once its body is consumed or discarded. */
export interface RegistryExchange {
  response: Response;
  /** Aborts on the caller's signal or the idle timeout. */
  signal: AbortSignal;
  /** Re-arms the idle timeout while a body streams. */
  heartbeat(): void;
  done(): void;
}

export interface RegistryClientOptions {
  insecure: boolean;
  username?: string;
  password?: string;
  requestTimeoutMs: number;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** Aborts a request whose headers, or next body chunk, did not come in time. */
class RequestTimeoutError extends Error {
  constructor(ms: number) {
    super(`no response from the registry within ${ms} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** A whole resolve, pull or push outlasted its bound, however steadily bytes came. */
export class TransferTimeoutError extends Error {
  constructor(ms: number) {
    super(`the transfer took longer than ${ms} ms`);
    this.name = 'TransferTimeoutError';
  }
}

/**
 * A signal that aborts with TransferTimeoutError after `ms` (or with `signal`'s reason first);
 * `done` stops its timer.
 */
export function transferDeadline(
  ms: number,
  signal?: AbortSignal,
): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TransferTimeoutError(ms)), ms);
  timer.unref();
  return {
    signal: signal ? AbortSignal.any([signal, controller.signal]) : controller.signal,
    done: () => clearTimeout(timer),
  };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
/** What Node's fetch dispatches through (undici's `Dispatcher`, as @types/node declares it). */
type Dispatcher = NonNullable<RequestInit['dispatcher']>;
/** Where every copy of undici in the process, Node's own included, keeps the default dispatcher. */
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

/**
 * The dispatcher of HEAD requests. undici, behind Node's fetch, sends a HEAD with
 * `connection: close` and drops its connection after the answer (in case a server sends a body
 * after a HEAD's headers), so each manifest HEAD paid a new TCP (and TLS) handshake.
 * `reset: false` in the dispatch options lifts that: the HEAD asks for keep-alive, and its
 * connection goes back to the pool when the server keeps it open. Everything else is the default
 * dispatcher's, looked up per request as fetch does: the pool every other registry request
 * uses, its keep-alive timeout and unreferenced idle sockets, TLS settings and environment proxy.
 * A server that sends a body after a HEAD's headers anyway (HTTP forbids it) has its connection
 * dropped when the body comes with them: undici's parser reads those bytes as no answer. Only a
 * body sent apart, after the next request went out on that connection, would fail that request.
 */
const keepAliveHead: Pick<Dispatcher, 'dispatch'> = {
  dispatch(options, handler) {
    const dispatcher = (globalThis as { [GLOBAL_DISPATCHER]?: Dispatcher })[GLOBAL_DISPATCHER];
    // fetch installs it before it dispatches anything.
    if (!dispatcher) throw new Error('no default fetch dispatcher installed');
    return dispatcher.dispatch({ ...options, reset: false }, handler);
  },
};

/** Tokens without `expires_in` live 60 s (distribution token spec). */
const DEFAULT_TOKEN_TTL_S = 60;
const ERROR_BODY_MAX = 64 * 1024;

/**
 * Speaks the distribution HTTP API for one process: builds URLs, applies the configured basic
 * credentials or the bearer-token flow on a 401 challenge (retrying once), bounds every request
 * in time and maps failures to the OCI domain errors.
 */
export class RegistryClient {
  /** Authorization header that last worked, per registry, repository and action. */
  private readonly authorizations = new Map<string, string>();
  /** Bearer tokens per realm, service and scope set. */
  private readonly tokens = new Map<string, CachedToken>();

  constructor(private readonly options: RegistryClientOptions) {}

  /** `http(s)://<registry>/v2/<repository>/` */
  repositoryUrl(ref: OciReference): URL {
    return new URL(
      `${this.options.insecure ? 'http' : 'https'}://${ref.registry}/v2/${ref.repository}/`,
    );
  }

  /**
   * Sends `request`, answering one authentication challenge if the registry raises it.
   * Any status may come back except 401/403 after authenticating, which throws 'unauthorized'.
   */
  async send(
    target: RegistryTarget,
    request: RegistryRequest,
    signal?: AbortSignal,
  ): Promise<RegistryExchange> {
    const key = `${target.ref.registry}|${target.ref.repository}|${request.action}`;
    const cached = this.authorizations.get(key);
    const first = await this.exchange(target, request, cached, signal);
    if (first.response.status !== 401) return first;

    const challenge = parseChallenge(first.response.headers.get('www-authenticate'));
    await discard(first);
    this.authorizations.delete(key);
    const authorization = await this.authorize(target, challenge, signal);
    const second = await this.exchange(target, request, authorization, signal);
    if (second.response.status === 401 || second.response.status === 403) {
      await discard(second);
      throw new OciInteractionError(target.reference, 'unauthorized', {
        cause: new Error(
          `${request.method} ${describeUrl(this.urlOf(target, request))} answered ${second.response.status} after authenticating`,
        ),
      });
    }
    this.authorizations.set(key, authorization);
    return second;
  }

  /**
   * Maps an unexpected answer to a domain error: 401/403 'unauthorized'; 404 on a manifest or a
   * MANIFEST_UNKNOWN / NAME_UNKNOWN code, not found; anything else 'failed'. Consumes the body.
   */
  async failure(
    target: RegistryTarget,
    exchange: RegistryExchange,
    what: 'manifest' | 'blob' | 'upload',
  ): Promise<DomainError> {
    const { response } = exchange;
    const body = await readLimitedText(exchange, ERROR_BODY_MAX).catch(() => '');
    const codes = errorCodes(body);
    const cause = new Error(
      `${what}: ${describeUrl(new URL(response.url || 'about:blank'))} answered ${response.status}${body ? `: ${body.slice(0, 500)}` : ''}`,
    );
    if (response.status === 401 || response.status === 403) {
      return new OciInteractionError(target.reference, 'unauthorized', { cause });
    }
    if (
      codes.includes('MANIFEST_UNKNOWN') ||
      codes.includes('NAME_UNKNOWN') ||
      (response.status === 404 && what === 'manifest')
    ) {
      return new OciReferenceNotFoundError(target.reference, { cause });
    }
    return new OciInteractionError(target.reference, 'failed', { cause });
  }

  /**
   * Turns anything thrown while talking to the registry into what the port promises: the
   * caller's abort reason, 'unreachable' for network errors and timeouts, domain errors as they
   * are, an artifact we refuse as SCENARIO_NON_MATCHING_SPECIFICATION (the author's to fix, so
   * the client is told what is wrong), 'failed' for the rest.
   */
  static toOciError(
    target: RegistryTarget,
    err: unknown,
    signal?: AbortSignal,
    exchange?: RegistryExchange,
  ): unknown {
    if (signal?.aborted) return signal.reason;
    if (err instanceof DomainError) return err;
    if (err instanceof ArtifactRefusedError) {
      return new ScenarioInvalidError(target.reference, `OCI artifact refused: ${err.message}`, {
        cause: err,
      });
    }
    if (exchange) err = unwrapAbort(err, exchange.signal);
    if (isNetworkError(err)) {
      return new OciInteractionError(target.reference, 'unreachable', { cause: err });
    }
    return new OciInteractionError(target.reference, 'failed', { cause: err });
  }

  private urlOf(target: RegistryTarget, request: RegistryRequest): URL {
    return request.url ?? new URL(request.path ?? '', this.repositoryUrl(target.ref));
  }

  private async exchange(
    target: RegistryTarget,
    request: RegistryRequest,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<RegistryExchange> {
    const url = this.urlOf(target, request);
    const headers: Record<string, string> = { ...request.headers };
    if (authorization) headers.Authorization = authorization;
    const { signal: combined, heartbeat, done } = this.deadline(signal);
    try {
      const response = await fetch(url, {
        method: request.method,
        headers,
        body: request.body,
        signal: combined,
        redirect: 'follow',
        ...(request.method === 'HEAD' && { dispatcher: keepAliveHead as Dispatcher }),
      });
      return { response, signal: combined, heartbeat, done };
    } catch (err) {
      done();
      throw RegistryClient.toOciError(target, unwrapAbort(err, combined), signal);
    }
  }

  /** An idle timer: armed now, re-armed by `heartbeat`, stopped by `done`. */
  private deadline(signal?: AbortSignal): {
    signal: AbortSignal;
    heartbeat: () => void;
    done: () => void;
  } {
    const controller = new AbortController();
    const ms = this.options.requestTimeoutMs;
    const fire = (): void => controller.abort(new RequestTimeoutError(ms));
    let timer = setTimeout(fire, ms);
    timer.unref();
    return {
      signal: signal ? AbortSignal.any([signal, controller.signal]) : controller.signal,
      heartbeat: () => {
        clearTimeout(timer);
        timer = setTimeout(fire, ms);
        timer.unref();
      },
      done: () => clearTimeout(timer),
    };
  }

  private basicCredentials(): string | undefined {
    const { username, password } = this.options;
    if (!username || !password) return undefined;
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  private async authorize(
    target: RegistryTarget,
    challenge: Challenge | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const unauthorized = (why: string): OciInteractionError =>
      new OciInteractionError(target.reference, 'unauthorized', { cause: new Error(why) });
    if (challenge?.scheme === 'basic') {
      const basic = this.basicCredentials();
      if (!basic) throw unauthorized('the registry requires basic credentials; none configured');
      return basic;
    }
    if (challenge?.scheme === 'bearer') {
      return `Bearer ${await this.token(target, challenge.params, signal)}`;
    }
    throw unauthorized(`the registry answered 401 without a usable challenge`);
  }

  private async token(
    target: RegistryTarget,
    params: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<string> {
    const failed = (why: string, kind: 'failed' | 'unauthorized' = 'failed'): OciInteractionError =>
      new OciInteractionError(target.reference, kind, { cause: new Error(why) });
    const realm = params.realm;
    if (!realm) throw failed('bearer challenge without realm');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw failed(`bearer realm "${realm}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw failed(`bearer realm "${realm}" is not http(s)`);
    }
    if (params.service) url.searchParams.set('service', params.service);
    // Several scopes arrive space-separated in one parameter; the token server wants one
    // `scope=` each.
    const scopes = (params.scope ?? '').split(' ').filter((s) => s.length > 0);
    for (const scope of scopes) url.searchParams.append('scope', scope);

    const key = `${url.origin}${url.pathname}|${params.service ?? ''}|${[...scopes].sort().join(' ')}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.value;

    const headers: Record<string, string> = {};
    const basic = this.basicCredentials();
    // Credentials travel in clear over http; only when the operator said plain HTTP is fine.
    if (basic && (url.protocol === 'https:' || this.options.insecure))
      headers.Authorization = basic;
    const { signal: combined, done } = this.deadline(signal);
    try {
      const response = await fetch(url, { headers, signal: combined });
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        throw failed(
          `token server ${describeUrl(url)} answered ${response.status}`,
          'unauthorized',
        );
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw failed(`token server ${describeUrl(url)} answered ${response.status}`);
      }
      const body = (await response.json()) as {
        token?: unknown;
        access_token?: unknown;
        expires_in?: unknown;
      };
      const value =
        typeof body.token === 'string' && body.token
          ? body.token
          : typeof body.access_token === 'string'
            ? body.access_token
            : '';
      if (!value) throw failed(`token server ${describeUrl(url)} returned no token`);
      const ttl =
        typeof body.expires_in === 'number' && body.expires_in > 0
          ? body.expires_in
          : DEFAULT_TOKEN_TTL_S;
      // Renew a little early so a token does not expire between cache lookup and use.
      this.tokens.set(key, { value, expiresAt: Date.now() + Math.max(ttl - 5, 1) * 1000 });
      return value;
    } catch (err) {
      throw RegistryClient.toOciError(target, unwrapAbort(err, combined), signal);
    } finally {
      done();
    }
  }
}

/** Reads at most `max` bytes of a body as text (for error bodies), then releases it. */
export async function readLimitedText(exchange: RegistryExchange, max: number): Promise<string> {
  const bytes = await readLimitedBytes(exchange, max);
  return bytes.toString('utf8');
}

/** Reads a whole body, throwing `tooLarge()` past `max` bytes; always releases the exchange. */
export async function readLimitedBytes(
  exchange: RegistryExchange,
  max: number,
  tooLarge: () => Error = () => new Error(`body larger than ${max} bytes`),
): Promise<Buffer> {
  const body = exchange.response.body;
  try {
    if (!body) return Buffer.alloc(0);
    const reader = body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      exchange.heartbeat();
      total += value.byteLength;
      if (total > max) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
    return Buffer.concat(chunks);
  } finally {
    exchange.done();
  }
}

/** Drops a body we do not need, so the connection can be reused. */
export async function discard(exchange: RegistryExchange): Promise<void> {
  try {
    await exchange.response.body?.cancel();
  } catch {
    // Nothing to release if the stream is already broken.
  } finally {
    exchange.done();
  }
}

/** Parses `Bearer realm="...",service="...",scope="a b"` (quoted values may contain commas). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const pairs = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const pair of (match[2] ?? '').matchAll(pairs)) {
    const name = pair[1]!.toLowerCase();
    params[name] = pair[2] !== undefined ? pair[2].replace(/\\(.)/g, '$1') : (pair[3] ?? '');
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

function errorCodes(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: unknown }[] };
    return (parsed.errors ?? []).flatMap((e) => (typeof e.code === 'string' ? [e.code] : []));
  } catch {
    return [];
  }
}

/** fetch rejects with the abort reason or an AbortError; prefer our timeout when it fired. */
function unwrapAbort(err: unknown, signal: AbortSignal): unknown {
  if (
    signal.aborted &&
    (signal.reason instanceof RequestTimeoutError || signal.reason instanceof TransferTimeoutError)
  ) {
    return signal.reason;
  }
  return err;
}

function isNetworkError(err: unknown): boolean {
  if (err instanceof RequestTimeoutError || err instanceof TransferTimeoutError) return true;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (e instanceof TypeError && (e.message === 'fetch failed' || e.message === 'terminated')) {
      return true;
    }
    e = e.cause;
  }
  return false;
}

/** A URL for logs, without credentials or upload state. */
function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

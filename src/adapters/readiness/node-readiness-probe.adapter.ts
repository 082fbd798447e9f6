import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { readinessTarget, type ReadinessTarget } from '../../shared/domain';
import { ReadinessProbe, type NotReady, type ReadinessBounds } from '../../shared/ports';

export interface NodeReadinessProbeOptions {
  bounds: ReadinessBounds;
  /** Bound of one attempt (connect, or HTTP response headers). */
  attemptTimeoutMs?: number;
  /** Pause after the first failed attempt; doubled after each further one, up to the max. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** One attempt failed; `message` is for the logs and never holds the probe's address. */
class AttemptFailed extends Error {
  constructor(
    message: string,
    /** It got no answer in its time (rather than a refusal or a bad status). */
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/**
 * Probes with Node's own sockets: `tcp://` connects, `http(s)://` sends a GET and wants a 2xx
 * or 3xx (redirects are not followed: a service that redirects is answering). Certificates are
 * not checked: the question is whether the service answers, not who it is, and CTF services
 * often serve self-signed ones. No connection is reused between attempts.
 */
export class NodeReadinessProbe extends ReadinessProbe {
  readonly bounds: ReadinessBounds;
  private readonly attemptTimeoutMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(options: NodeReadinessProbeOptions) {
    super();
    this.bounds = Object.freeze({ ...options.bounds });
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 2_000;
    this.minBackoffMs = options.minBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 1_000;
  }

  async waitReady(
    probes: readonly string[],
    withinMs: number,
    signal?: AbortSignal,
  ): Promise<NotReady | undefined> {
    signal?.throwIfAborted();
    // A monotonic clock: a wall-clock step must not stretch or cut the wait.
    const deadline = performance.now() + withinMs;
    const outcomes = await Promise.all(
      probes.map((probe) => this.untilAnswered(probe, deadline, signal)),
    );
    signal?.throwIfAborted();
    const failing = outcomes.flatMap((outcome, i) => (outcome === undefined ? [] : [i + 1]));
    const first = outcomes.find((outcome) => outcome !== undefined);
    return first === undefined ? undefined : { failing, lastError: first };
  }

  /** Undefined once the probe answered; what the last attempt met when the deadline came. */
  private async untilAnswered(
    probe: string,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const target = readinessTarget(probe);
    if ('problem' in target) return `not a probe: ${target.problem}`;
    let backoff = this.minBackoffMs;
    let lastError: string | undefined;
    for (;;) {
      const left = deadline - performance.now();
      if (left > 0) {
        const budget = Math.min(this.attemptTimeoutMs, left);
        try {
          await attempt(target, budget, signal);
          return undefined;
        } catch (err) {
          if (signal?.aborted) throw signal.reason;
          const failure = err instanceof AttemptFailed ? err : new AttemptFailed('failed', false);
          // A last attempt cut short by the deadline says less than the refusal before it.
          const cutShort = failure.timedOut && budget < this.attemptTimeoutMs;
          if (!cutShort || lastError === undefined) lastError = failure.message;
        }
      }
      const pause = Math.min(backoff, deadline - performance.now());
      if (pause <= 0) return lastError ?? 'no attempt within the time given';
      await sleep(pause, signal);
      backoff = Math.min(backoff * 2, this.maxBackoffMs);
    }
  }
}

/** How long a connection that answered gets to close gracefully before it is cut. */
const CLOSE_GRACE_MS = 1_000;

/**
 * One connection (and request): resolves when the target answered as a ready one does. A
 * connection that answered is closed gracefully: what the service sent is read and a FIN sent,
 * never a reset (a socket closed with unread data resets the connection, and a service that
 * writes a banner to every client may not survive a reset on the connection it is writing to).
 */
function attempt(target: ReadinessTarget, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    let cut: () => void = () => undefined;
    let close: () => void = () => undefined;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        cut();
        reject(err);
        return;
      }
      close();
      setTimeout(cut, CLOSE_GRACE_MS).unref();
      resolve();
    };
    const onAbort = (): void => finish(new AttemptFailed('aborted', false));
    const timer = setTimeout(
      () => finish(new AttemptFailed(`no answer within ${Math.round(timeoutMs)} ms`, true)),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    const failed = (err: Error): void =>
      finish(new AttemptFailed((err as NodeJS.ErrnoException).code ?? 'connection failed', false));
    if (target.kind === 'tcp') {
      const socket = connect({ host: target.host, port: target.port });
      cut = () => socket.destroy();
      close = () => {
        socket.resume();
        socket.end();
      };
      socket.once('connect', () => finish());
      // Also after the answer: a reset while closing is no failure, and must not go unheard.
      socket.on('error', failed);
      socket.once('close', () => cut());
      return;
    }
    const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target.url, {
      method: 'GET',
      agent: false,
      rejectUnauthorized: false,
      headers: { 'user-agent': 'chall-manager-readiness' },
    });
    cut = () => req.destroy();
    req.once('response', (res) => {
      // Read to the end: the connection then closes as HTTP/1.1 without keep-alive does.
      res.resume();
      res.once('end', () => cut());
      const status = res.statusCode ?? 0;
      finish(
        status >= 200 && status < 400 ? undefined : new AttemptFailed(`HTTP ${status}`, false),
      );
    });
    req.on('error', failed);
    req.end();
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

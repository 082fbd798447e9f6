import type { ServerResponse } from 'node:http';
import { HTTP_FROM_GRPC } from '../errors/error-status';
import type { FailureReporter } from './failure-reporter';
import { rpcStatusToJson } from './rpc-status';

/**
 * Writes a server-streaming RPC the way grpc-gateway (upstream's REST gateway) does: chunked
 * `application/json`, one `{"result": …}` line per message, flushed as it comes. A failure before
 * the first message answers the mapped status with one `{"error": …}` line; after it, status 200
 * stays and a final `{"error": …}` line is written. No message at all is 200 with an empty body.
 * Stops reading the source when the client goes away. Never rejects. A failure is reported (and
 * counted) through `failures`, as the exception filter reports a unary call's.
 */
export async function writeNdjsonStream<T>(
  res: ServerResponse,
  source: AsyncIterable<T>,
  encode: (item: T) => unknown,
  failures: FailureReporter,
): Promise<void> {
  let gone = false;
  res.once('close', () => {
    gone = true;
  });
  let corked = false;
  const line = async (value: unknown): Promise<void> => {
    if (!res.headersSent) res.setHeader('Content-Type', 'application/json');
    // Lines written in one turn of the event loop leave in one write: a listing whose items are
    // ready at once (read ahead) would otherwise cost a socket write and a chunk per item.
    if (!corked) {
      corked = true;
      res.cork();
      setImmediate(() => {
        corked = false;
        res.uncork();
      });
    }
    if (!res.write(`${JSON.stringify(value)}\n`)) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    }
  };
  try {
    for await (const item of source) {
      if (gone) break;
      await line({ result: encode(item) });
    }
  } catch (error) {
    const status = failures.report(error, 'http');
    if (!gone) {
      if (!res.headersSent) res.statusCode = HTTP_FROM_GRPC[status.code];
      await line({ error: rpcStatusToJson(status) });
    }
  }
  if (!gone) res.end();
}

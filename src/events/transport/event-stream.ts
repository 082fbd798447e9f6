import type { ServerResponse } from 'node:http';
import type { LifecycleEvent } from '../../shared/domain';
import type { FailureReporter } from '../../shared/transport/failure-reporter';
import { rpcStatusToJson } from '../../shared/transport/rpc-status';
import { eventToJson } from './event.wire';

/** How long an EventSource waits before it reconnects (it then sends Last-Event-ID). */
const RETRY_MS = 2_000;

/**
 * Writes events as Server-Sent Events (`text/event-stream`): one `id:` + `data:` block per
 * event, the data being the event's JSON (its type inside, so a plain `onmessage` sees every
 * event), and a comment every `keepAliveMs` so proxies and clients do not take an idle stream
 * for a dead one. Ends when the client goes away or `stop` aborts (the replica drains: clients
 * reconnect, to another replica, with Last-Event-ID). A failure of the journal is written as an
 * `error` event carrying the google.rpc.Status, then the stream ends. Never rejects.
 */
export async function writeEventStream(
  res: ServerResponse,
  watch: (signal: AbortSignal) => AsyncIterable<LifecycleEvent>,
  options: { keepAliveMs: number; stop: AbortSignal; failures: FailureReporter },
): Promise<void> {
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  const signal = AbortSignal.any([gone.signal, options.stop]);
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
    // Reverse proxies (nginx) would otherwise hold events back in their buffers.
    'X-Accel-Buffering': 'no',
  });
  const write = async (block: string): Promise<void> => {
    if (signal.aborted) return;
    if (!res.write(block)) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    }
  };
  await write(`retry: ${RETRY_MS}\n\n`);
  const keepAlive = setInterval(() => void write(': keep-alive\n\n'), options.keepAliveMs);
  try {
    for await (const event of watch(signal)) {
      await write(`id: ${event.id}\ndata: ${JSON.stringify(eventToJson(event))}\n\n`);
    }
  } catch (error) {
    const status = options.failures.report(error, 'http');
    await write(`event: error\ndata: ${JSON.stringify(rpcStatusToJson(status))}\n\n`);
  } finally {
    clearInterval(keepAlive);
    if (!res.writableEnded) res.end();
  }
}

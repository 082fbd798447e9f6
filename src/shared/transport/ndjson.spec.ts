import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChallengeNotFoundError } from '../errors';
import type { ServiceMetrics } from '../telemetry';
import { FailureReporter } from './failure-reporter';
import { writeNdjsonStream } from './ndjson';

/** `failures` as recorded: [reason, transport] per failed request. */
function recordingReporter(): { reporter: FailureReporter; failures: [string, string][] } {
  const failures: [string, string][] = [];
  const metrics = {
    recordFailure: (reason: string, transport: string) => failures.push([reason, transport]),
  } as unknown as ServiceMetrics;
  return { reporter: new FailureReporter(metrics), failures };
}

async function* items(values: number[], failWith?: Error): AsyncGenerator<number> {
  await Promise.resolve();
  yield* values;
  if (failWith) throw failWith;
}

describe('writeNdjsonStream', () => {
  // The INTERNAL case logs its cause; keep the test output clean.
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(new Logger()));

  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  async function serve(source: () => AsyncIterable<number>, reporter: FailureReporter) {
    server = createServer((_req, res) => {
      void writeNdjsonStream(res, source(), (n) => ({ n }), reporter);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/`);
    return { status: res.status, lines: (await res.text()).split('\n').filter((l) => l !== '') };
  }

  it('should write one result line per item and count nothing when the stream succeeds', async () => {
    const { reporter, failures } = recordingReporter();
    const { status, lines } = await serve(() => items([1, 2]), reporter);
    expect(status).toBe(200);
    expect(lines).toEqual(['{"result":{"n":1}}', '{"result":{"n":2}}']);
    expect(failures).toEqual([]);
  });

  it('should answer the mapped status and count the failure when the stream fails at once', async () => {
    const { reporter, failures } = recordingReporter();
    const { status, lines } = await serve(
      () => items([], new ChallengeNotFoundError('c')),
      reporter,
    );
    expect(status).toBe(404);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      error: { code: 5, message: 'Challenge not found.' },
    });
    expect(failures).toEqual([['CHALLENGE_NOT_FOUND', 'http']]);
  });

  it('should end with an error line and count the failure when the stream fails midway', async () => {
    const { reporter, failures } = recordingReporter();
    const { status, lines } = await serve(() => items([1], new Error('disk on fire')), reporter);
    expect(status).toBe(200);
    expect(lines[0]).toBe('{"result":{"n":1}}');
    expect(JSON.parse(lines[1]!)).toMatchObject({
      error: { code: 13, message: 'An internal error occurred.' },
    });
    expect(failures).toEqual([['INTERNAL_ERROR', 'http']]);
  });
});

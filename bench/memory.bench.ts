// Memory and start-up benchmark of the built service, started as `npm start` starts it: idle RSS
// beside a bare node's, RSS after 1 000 mixed requests that need no registry and no Pulumi (reads
// of known and unknown ids, listings, health checks, refused input, over REST and gRPC), and the
// time from spawning the process to its first healthy `/healthcheck` beside a bare node's start.
// Run: npm run bench -- memory
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectApiClients } from '../test/support/grpc-client';
import { freePort } from '../test/support/services';
import { seedChallenges } from './seed';
import {
  bareNodeRssMiB,
  bareNodeStartMs,
  median,
  row,
  rssMiB,
  serviceNodeArgs,
  summary,
  timed,
} from './stats';

/** How long the service and the bare node idle before their RSS is read. */
const IDLE_SETTLE_MS = 5_000;
const CHALLENGES = 100;
const REQUESTS = 1000;
const START_RUNS = 3;

interface Service {
  child: ChildProcess;
  api: string;
  port: number;
  /** Milliseconds from spawn to the first 200 of `/healthcheck`. */
  healthyMs: number;
}

async function startService(dir: string, cache: string): Promise<Service> {
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, serviceNodeArgs(), {
    env: {
      ...process.env,
      PORT: String(port),
      DIR: dir,
      CACHE: cache,
      OCI_INSECURE: 'true',
      LOG_LEVEL: 'warn',
      JANITOR_TICKER: '0',
    },
    stdio: 'ignore',
  });
  for (let i = 0; ; i++) {
    const ok = await fetch(`${api}/healthcheck`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i >= 3000 || child.exitCode !== null) throw new Error('the service did not start');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { child, api, port, healthyMs: Number(process.hrtime.bigint() - start) / 1e6 };
}

async function stopService(service: Service): Promise<void> {
  service.child.kill('SIGTERM');
  if (service.child.exitCode === null) await new Promise((r) => service.child.once('exit', r));
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'cm-bench-memory-'));
  const dir = join(scratch, 'data');
  const cache = join(scratch, 'cache');
  // Records only: reads and listings never touch the scenario, so no registry is needed.
  await seedChallenges(dir, CHALLENGES, 'registry.invalid/bench/scenario:v1');
  try {
    console.log(
      `Memory and start-up benchmark (node ${serviceNodeArgs().join(' ')}, ${CHALLENGES} challenges on disk, ${new Date().toISOString()})`,
    );
    const starts: number[] = [];
    const floors: number[] = [];
    for (let i = 0; i < START_RUNS; i++) {
      const s = await startService(dir, cache);
      starts.push(s.healthyMs);
      await stopService(s);
      floors.push(await bareNodeStartMs());
    }
    row(
      `start to first healthy, median of ${START_RUNS} (floor: bare node)`,
      `${median(starts).toFixed(0)} ms (${median(floors).toFixed(0)} ms)`,
    );

    const service = await startService(dir, cache);
    const grpc = connectApiClients(`127.0.0.1:${service.port}`);
    try {
      await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
      const idle = rssMiB(service.child.pid!);
      const bare = await bareNodeRssMiB(IDLE_SETTLE_MS);
      row(
        'idle RSS of the service (floor: bare node)',
        `${idle.toFixed(1)} MiB (${bare.toFixed(1)} MiB)`,
      );

      const { api } = service;
      const json = { 'content-type': 'application/json' };
      const settled = (p: Promise<unknown>): Promise<unknown> => p.catch((err: unknown) => err);
      const retrieve = grpc.unary(grpc.challenge, 'retrieveChallenge');
      const query = grpc.stream(grpc.challenge, 'queryChallenge');
      const retrieveInstance = grpc.unary(grpc.instance, 'retrieveInstance');
      const create = grpc.unary(grpc.challenge, 'createChallenge');
      const kinds: ((i: number) => Promise<unknown>)[] = [
        (i) => fetch(`${api}/api/v1/challenge/seed-${i % CHALLENGES}`).then((r) => r.text()),
        (i) => settled(retrieve({ id: `unknown-${i}` })),
        (i) =>
          fetch(`${api}/api/v1/instance/seed-${i % CHALLENGES}/unknown-${i}`).then((r) => r.text()),
        (i) => settled(retrieveInstance({ challengeId: `unknown-${i}`, sourceId: 'src' })),
        () => fetch(`${api}/healthcheck`).then((r) => r.text()),
        // Refused before any work: a body that is not JSON, a challenge without id or scenario.
        () =>
          fetch(`${api}/api/v1/challenge`, { method: 'POST', headers: json, body: '{' }).then((r) =>
            r.text(),
          ),
        () => settled(create({ id: '', scenario: '' })),
        (i) => (i % 16 === 7 ? fetch(`${api}/api/v1/challenge`).then((r) => r.text()) : query({})),
      ];
      const latencies: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const kind = kinds[i % kinds.length]!;
        latencies.push((await timed(() => kind(i)))[0]);
      }
      await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
      row(
        `RSS after ${REQUESTS} mixed requests (floor: bare node)`,
        `${rssMiB(service.child.pid!).toFixed(1)} MiB (${bare.toFixed(1)} MiB)`,
      );
      row(`latency of the ${REQUESTS} mixed requests`, summary(latencies));
    } finally {
      grpc.close();
      await stopService(service);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

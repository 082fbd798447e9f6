// API benchmark against the built service (started as `npm start` starts it) over loopback, REST
// and gRPC: RetrieveChallenge latency, QueryChallenge over 300, 1 000 and 10 000 challenges (each
// beside the floor of reading and encoding the same records in this process), and a no-op
// UpdateChallenge (upstream's integration bound: 500 ms) naming the additional alone, then the
// scenario too, beside its floors: RetrieveChallenge (same transport, same record read) and one
// HEAD of the manifest (an update naming the scenario asks the registry whether the tag moved),
// by Node's fetch (a new connection each) and by the OCI adapter (a kept connection).
// The challenges are written to DIR with the service's own state store (creating them through the
// API would run one preview each).
// Run: npm run bench -- api. BENCH_API_ONLY=update npm run bench -- api skips the idle RSS and
// QueryChallenge (about a minute): the UpdateChallenge lines and their floors only.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpOciRegistry } from '../src/adapters/oci/http-oci-registry.adapter';
import {
  DEFAULT_OCI_LIMITS,
  DEFAULT_OCI_REQUEST_TIMEOUT_MS,
} from '../src/adapters/oci/http-oci-registry.options';
import { MANIFEST_ACCEPT } from '../src/adapters/oci/oci-media-types';
import { connectApiClients } from '../test/support/grpc-client';
import { freePort, startRegistry } from '../test/support/services';
import { useToolchainPath } from '../test/support/toolchain';
import { seedChallenges } from './seed';
import {
  bareNodeRssMiB,
  readParseEncode,
  row,
  rssMiB,
  serviceNodeArgs,
  summary,
  timed,
} from './stats';

/** How long the service and the bare node idle before their RSS is read. */
const IDLE_SETTLE_MS = 5_000;

/** Challenges on disk at start; QueryChallenge is measured at each size of QUERY_SIZES. */
const CHALLENGES = 300;
const QUERY_SIZES = [300, 1000, 10_000];

/**
 * The floor of QueryChallenge: each challenge's record and instance directory read with
 * synchronous calls in this process, the records parsed and encoded.
 */
function queryChallengeFloor(dir: string): void {
  const root = join(dir, 'chall');
  const names = readdirSync(root).filter((n) => !n.startsWith('.'));
  for (const name of names) {
    const instances = join(root, name, 'instance');
    if (existsSync(instances)) readdirSync(instances);
  }
  readParseEncode(names.map((name) => join(root, name, 'info.json')));
}

/** BENCH_API_ONLY=update: only what the no-op UpdateChallenge lines need. */
const updateOnly = process.env.BENCH_API_ONLY === 'update';

/** The registry URL of `ref`'s manifest (`host/repository:tag`, plain HTTP). */
function manifestUrl(ref: string): string {
  const slash = ref.indexOf('/');
  const colon = ref.lastIndexOf(':');
  return `http://${ref.slice(0, slash)}/v2/${ref.slice(slash + 1, colon)}/manifests/${ref.slice(colon + 1)}`;
}

async function main(): Promise<void> {
  useToolchainPath();
  const registry = await startRegistry();
  const scratch = mkdtempSync(join(tmpdir(), 'cm-bench-api-'));
  const ref = `${registry.endpoint}/bench/nodejs-flag-server:v1`;
  const oci = new HttpOciRegistry({
    cacheDir: join(scratch, 'push'),
    insecure: true,
    limits: DEFAULT_OCI_LIMITS,
    requestTimeoutMs: DEFAULT_OCI_REQUEST_TIMEOUT_MS,
  });
  await oci.pushScenario(join(process.cwd(), 'examples', 'nodejs-flag-server'), ref);
  const dir = join(scratch, 'data');
  await seedChallenges(dir, CHALLENGES, ref);
  const port = await freePort();
  const service = spawn(process.execPath, serviceNodeArgs(), {
    env: {
      ...process.env,
      PORT: String(port),
      DIR: dir,
      CACHE: join(scratch, 'cache'),
      OCI_INSECURE: 'true',
      LOG_LEVEL: 'warn',
      JANITOR_TICKER: '0',
    },
    stdio: 'ignore',
  });
  const api = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; i < 400; i++) {
      if (
        await fetch(`${api}/healthcheck`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Idle RSS: the service booted with CHALLENGES challenges on disk, no request served yet.
    let rss: string | undefined;
    if (!updateOnly) {
      await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
      const idleRss = rssMiB(service.pid!);
      const bareRss = await bareNodeRssMiB(IDLE_SETTLE_MS);
      rss = `${idleRss.toFixed(1)} MiB (${bareRss.toFixed(1)} MiB)`;
    }
    const json = { 'content-type': 'application/json' };
    const [create] = await timed(() =>
      fetch(`${api}/api/v1/challenge`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ id: 'bench', scenario: ref, timeout: '600s' }),
      }).then((r) => r.text()),
    );
    const grpc = connectApiClients(`127.0.0.1:${port}`);
    const retrieveGrpc = grpc.unary(grpc.challenge, 'retrieveChallenge');
    const queryGrpc = grpc.stream(grpc.challenge, 'queryChallenge');
    const updateGrpc = grpc.unary(grpc.challenge, 'updateChallenge');

    const sample = async (n: number, work: () => Promise<unknown>): Promise<number[]> => {
      await work(); // warm-up
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await timed(work))[0]);
      return out;
    };
    console.log(
      `API benchmark (${CHALLENGES + 1} challenges on disk at first, ${new Date().toISOString()})`,
    );
    if (rss !== undefined) row('idle RSS of the service (floor: bare node)', rss);
    row('CreateChallenge (pull + pulumi preview)', `${create.toFixed(0)} ms`);
    row(
      'RetrieveChallenge, REST',
      summary(
        await sample(500, () => fetch(`${api}/api/v1/challenge/bench`).then((r) => r.text())),
      ),
    );
    row('RetrieveChallenge, gRPC', summary(await sample(500, () => retrieveGrpc({ id: 'bench' }))));
    let seeded = CHALLENGES;
    for (const size of updateOnly ? [] : QUERY_SIZES) {
      await seedChallenges(dir, size, ref, seeded);
      seeded = Math.max(seeded, size);
      const floor = await sample(10, () => Promise.resolve(queryChallengeFloor(dir)));
      row(`QueryChallenge (${size + 1} items), floor: sync reads + encode`, summary(floor));
      row(
        `QueryChallenge (${size + 1} items), REST`,
        summary(await sample(10, () => fetch(`${api}/api/v1/challenge`).then((r) => r.text()))),
      );
      row(
        `QueryChallenge (${size + 1} items), gRPC`,
        summary(await sample(10, () => queryGrpc({}))),
      );
    }
    // The floors of a no-op update: a RetrieveChallenge (the same transport and record read,
    // above), and for one naming the scenario, the registry's answer on whether the tag moved.
    const manifest = manifestUrl(ref);
    row(
      'floor: HEAD of the scenario manifest',
      summary(
        await sample(50, () =>
          fetch(manifest, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } }).then((r) =>
            r.text(),
          ),
        ),
      ),
    );
    // The same HEAD as the service sends it: through the OCI adapter, which keeps its connection.
    row(
      'floor: HEAD of the scenario manifest by the OCI adapter (resolve)',
      summary(await sample(50, () => oci.resolve(ref))),
    );
    for (const paths of [['additional'], ['scenario', 'additional']]) {
      const what = paths.join(', ');
      const noop = { scenario: ref, additional: {} };
      row(
        `UpdateChallenge no-op (${what}), REST`,
        summary(
          await sample(50, () =>
            fetch(`${api}/api/v1/challenge/bench`, {
              method: 'PATCH',
              headers: json,
              body: JSON.stringify({ ...noop, updateMask: paths.join(',') }),
            }).then((r) => r.text()),
          ),
        ),
      );
      row(
        `UpdateChallenge no-op (${what}), gRPC`,
        summary(
          await sample(50, () => updateGrpc({ id: 'bench', ...noop, updateMask: { paths } })),
        ),
      );
    }
    grpc.close();
  } finally {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
    await registry.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

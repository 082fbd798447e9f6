// Claims and instance reads at CTF scale, against the built service (node dist/main.js,
// JANITOR_TICKER=0) over loopback, each figure printed beside the floor measured in this run:
// - floors: a bare Node HTTP round trip, a bare grpc-js unary round trip, an fsync of a small
//   file, the state store's own claim (the disk work of a claim), an etcd lock round trip;
// - pooled claims over REST and gRPC at 1, 10 and 50 concurrent clients, then 500 at once on a
//   pool of 500 (each identity handed out once), with in-process locks and with etcd locks;
// - RetrieveInstance and RetrieveChallenge on a small challenge and on one of 10 000 instances;
//   QueryInstance of one source over 1 000 challenges; the last two beside the floor of reading
//   and encoding the same records with synchronous calls in this process.
// Pooled and claimed instances are written to DIR with the service's own state store, without
// deploying stacks: a claim without `additional` reads and writes records only, and deploying
// thousands of stacks would measure Pulumi, not the claim (bench/pool.bench.ts claims from a
// pool the service deployed itself). Run: npm run bench -- claims
import { Logger } from '@nestjs/common';
import { Server, ServerCredentials, credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdDistributedLock } from '../src/adapters/lock/etcd-distributed-lock.adapter';
import { FsStateStore } from '../src/adapters/state/fs-state-store.adapter';
import { lockKeys, md5Hex } from '../src/shared/domain';
import { connectApiClients, type ApiClients } from '../test/support/grpc-client';
import { startReplica, type Replica } from '../test/support/replica-process';
import { startEtcd, startRegistry } from '../test/support/services';
import { useToolchainPath } from '../test/support/toolchain';
import { pushOutputsOnly } from './fixtures';
import { instanceRecord, seedInstances } from './seed';
import { percentile, readParseEncode, row, serviceNodeArgs, summary, timed } from './stats';

const CHALLENGE = 'bench';
const BIG = 'bench-10k';
const SMALL = 'bench-small';
const BIG_INSTANCES = 10_000;
const QUERY_CHALLENGES = 1_000;
/** Per transport: [concurrent clients, claims]. */
const PLAN: [number, number][] = [
  [1, 50],
  [10, 100],
  [50, 200],
];
const RUSH = 500;

const json = { 'content-type': 'application/json' };

async function sample(n: number, work: () => Promise<unknown>): Promise<number[]> {
  await work(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await timed(work))[0]);
  return out;
}

/** `concurrency` clients claiming `total` instances in rounds; every claim must be pooled. */
async function claimRounds(
  concurrency: number,
  total: number,
  claim: () => Promise<string>,
): Promise<number[]> {
  const samples: number[] = [];
  const seen = new Set<string>();
  for (let r = 0; r < total / concurrency; r++) {
    const round = await Promise.all(Array.from({ length: concurrency }, () => timed(claim)));
    for (const [ms, identity] of round) {
      if (seen.has(identity)) throw new Error(`instance ${identity} handed out twice`);
      seen.add(identity);
      samples.push(ms);
    }
  }
  return samples;
}

/** Floors of the transports: a bare node:http server and a bare grpc-js server, in this process. */
async function transportFloors(): Promise<{ http: number[]; grpc: number[] }> {
  const http = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, json).end('{"ok":true}'));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const address = http.address();
  const httpPort = typeof address === 'object' && address !== null ? address.port : 0;
  const httpSamples = await sample(500, () =>
    fetch(`http://127.0.0.1:${httpPort}/`, { method: 'POST', headers: json, body: '{}' }).then(
      (r) => r.text(),
    ),
  );
  await new Promise<void>((r) => http.close(() => r()));

  const definition = fromJSON({
    nested: {
      floor: {
        nested: {
          Empty: { fields: {} },
          Floor: {
            methods: { Ping: { requestType: 'Empty', responseType: 'Empty', comment: '' } },
          },
        },
      },
    },
  });
  const pkg = loadPackageDefinition(definition) as unknown as {
    floor: { Floor: { service: never } & (new (a: string, c: unknown) => GrpcPing) };
  };
  const server = new Server();
  server.addService(pkg.floor.Floor.service, {
    Ping: (_call: unknown, cb: (err: null, res: object) => void) => cb(null, {}),
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  const client = new pkg.floor.Floor(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
  const grpcSamples = await sample(
    500,
    () =>
      new Promise<void>((resolve, reject) =>
        client.Ping({}, (err) => (err ? reject(err) : resolve())),
      ),
  );
  client.close();
  server.forceShutdown();
  return { http: httpSamples, grpc: grpcSamples };
}

interface GrpcPing {
  Ping(req: object, cb: (err: Error | null) => void): void;
  close(): void;
}

/** open + write + fsync + close of a small file, and the directory fsync a rename needs. */
async function fsyncFloor(dir: string): Promise<number[]> {
  let i = 0;
  return sample(200, async () => {
    const handle = await open(join(dir, `fsync-${i++}`), 'w');
    await handle.writeFile('x'.repeat(64));
    await handle.sync();
    await handle.close();
  });
}

async function main(): Promise<void> {
  useToolchainPath();
  Logger.overrideLogger(['error']);
  const registry = await startRegistry();
  const etcd = await startEtcd();
  const scratch = mkdtempSync(join(tmpdir(), 'cm-bench-claims-'));
  const ref = await pushOutputsOnly(registry.endpoint, scratch, 'bench');
  const replicas: Replica[] = [];
  const clients: ApiClients[] = [];
  try {
    console.log(
      `claims benchmark (node ${serviceNodeArgs().join(' ')}, records seeded through the state store, ${new Date().toISOString()})`,
    );
    const floors = await transportFloors();
    row('floor: bare node:http round trip', summary(floors.http));
    row('floor: bare grpc-js unary round trip', summary(floors.grpc));
    row('floor: fsync of a small file', summary(await fsyncFloor(scratch)));
    const lock = new EtcdDistributedLock({ endpoints: [etcd.endpoint] });
    try {
      let k = 0;
      row(
        'floor: etcd lock round trip (write lock, uncontended)',
        summary(
          await sample(200, () =>
            lock.withWriteLock(lockKeys.challenge(`floor-${k++}`), async () => {}),
          ),
        ),
      );
    } finally {
      await lock.onApplicationShutdown();
    }

    for (const [mode, env] of [
      ['in-process locks', {}],
      ['etcd locks', { ETCD_ENDPOINT: etcd.endpoint }],
    ] as const) {
      const dir = join(scratch, `data-${replicas.length}`);
      const store = new FsStateStore({ dir });
      await store.onModuleInit();
      const service = await startReplica({
        name: mode,
        dir,
        cache: join(scratch, `cache-${replicas.length}`),
        env: { JANITOR_TICKER: '0', LOG_LEVEL: 'error', ...env },
        root: process.cwd(),
        // Started as `npm start` starts it: its V8 flags weigh on the claims' latency.
        nodeFlags: serviceNodeArgs().slice(0, -1),
      });
      replicas.push(service);
      const grpc = connectApiClients(service.address);
      clients.push(grpc);
      const api = service.base;
      const create = await fetch(`${api}/api/v1/challenge`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ id: CHALLENGE, scenario: ref, timeout: '600s' }),
      });
      if (create.status !== 200) throw new Error(`CreateChallenge: ${await create.text()}`);

      // The disk work of a claim, on the adapter directly (records in this DIR).
      const direct = await seedInstances(store, 200, () => instanceRecord(CHALLENGE));
      let d = 0;
      row(
        `[${mode}] floor: state store claim (adapter)`,
        summary(
          await sample(direct.length - 1, () =>
            store.claim(CHALLENGE, direct[d++]!, `direct-${d}`),
          ),
        ),
      );

      let source = 0;
      const claimRest = async (): Promise<string> => {
        const res = await fetch(`${api}/api/v1/instance`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ challengeId: CHALLENGE, sourceId: `s${source++}` }),
        });
        const body = (await res.json()) as { connectionInfo?: string };
        if (res.status !== 200) throw new Error(`CreateInstance: ${JSON.stringify(body)}`);
        return body.connectionInfo ?? '';
      };
      const createGrpc = grpc.unary(grpc.instance, 'CreateInstance');
      const claimGrpc = async (): Promise<string> =>
        String(
          (await createGrpc({ challengeId: CHALLENGE, sourceId: `s${source++}` })).connectionInfo,
        );
      const p50 = new Map<string, number>();
      for (const [concurrency, claims] of PLAN) {
        for (const [transport, claim] of [
          ['REST', claimRest],
          ['gRPC', claimGrpc],
        ] as const) {
          await seedInstances(store, claims + 1, () => instanceRecord(CHALLENGE));
          await claim(); // warm-up
          const samples = await claimRounds(concurrency, claims, claim);
          const sorted = [...samples].sort((a, b) => a - b);
          p50.set(`${transport}-${concurrency}`, percentile(sorted, 50));
          p50.set(`${transport}-${concurrency}-p99`, percentile(sorted, 99));
          row(`[${mode}] pooled claim, ${transport}, ${concurrency} concurrent`, summary(samples));
        }
      }
      row(
        `[${mode}] gRPC ÷ REST at 50 clients (p99)`,
        `${((p50.get('gRPC-50-p99') ?? NaN) / (p50.get('REST-50-p99') ?? NaN)).toFixed(2)}`,
      );

      await seedInstances(store, RUSH, () => instanceRecord(CHALLENGE));
      const rush = await claimRounds(RUSH, RUSH, claimRest);
      row(`[${mode}] ${RUSH} concurrent claims on a pool of ${RUSH}, REST`, summary(rush));
      if (mode === 'etcd locks') continue;

      // Reads: a small challenge, then one with 10 000 claimed instances.
      const retrieveGrpc = grpc.unary(grpc.instance, 'RetrieveInstance');
      row(
        'RetrieveInstance, REST (challenge of ~1 300 instances)',
        summary(
          await sample(500, () =>
            fetch(`${api}/api/v1/instance/${CHALLENGE}/s1`).then((r) => r.text()),
          ),
        ),
      );
      row(
        'RetrieveInstance, gRPC (challenge of ~1 300 instances)',
        summary(await sample(500, () => retrieveGrpc({ challengeId: CHALLENGE, sourceId: 's1' }))),
      );
      const seedBig = await fetch(`${api}/api/v1/challenge`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ id: BIG, scenario: ref, timeout: '600s' }),
      });
      if (seedBig.status !== 200) throw new Error(`CreateChallenge: ${await seedBig.text()}`);
      await seedInstances(store, BIG_INSTANCES, (i) => instanceRecord(BIG, `t${i}`));
      const seedSmall = await fetch(`${api}/api/v1/challenge`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ id: SMALL, scenario: ref, timeout: '600s' }),
      });
      if (seedSmall.status !== 200) throw new Error(`CreateChallenge: ${await seedSmall.text()}`);
      await seedInstances(store, 5, (i) => instanceRecord(SMALL, `u${i}`));
      row(
        `RetrieveInstance, REST (challenge of ${BIG_INSTANCES} instances)`,
        summary(
          await sample(500, () => fetch(`${api}/api/v1/instance/${BIG}/t77`).then((r) => r.text())),
        ),
      );
      const challDir = (id: string): string => join(dir, 'chall', md5Hex(id));
      // Floor: the challenge's record, its instance directory, every instance's record and claim.
      const retrieveFloor = (id: string) => (): Promise<unknown> => {
        const instances = join(challDir(id), 'instance');
        const names = readdirSync(instances);
        for (const n of names) readdirSync(join(instances, n));
        return Promise.resolve(
          readParseEncode([
            join(challDir(id), 'info.json'),
            ...names.map((n) => join(instances, n, 'info.json')),
          ]),
        );
      };
      row(
        'RetrieveChallenge, floor: sync reads + encode (small challenge)',
        summary(await sample(100, retrieveFloor(SMALL))),
      );
      row(
        'RetrieveChallenge, REST (small challenge)',
        summary(
          await sample(500, () => fetch(`${api}/api/v1/challenge/${SMALL}`).then((r) => r.text())),
        ),
      );
      row(
        `RetrieveChallenge, floor: sync reads + encode (${BIG_INSTANCES} instances)`,
        summary(await sample(20, retrieveFloor(BIG))),
      );
      row(
        `RetrieveChallenge, REST (${BIG_INSTANCES} instances in the answer)`,
        summary(
          await sample(20, () => fetch(`${api}/api/v1/challenge/${BIG}`).then((r) => r.text())),
        ),
      );
      for (let i = 0; i < QUERY_CHALLENGES; i++) {
        await store.saveChallenge({ id: `q-${i}`, scenario: ref, additional: {}, min: 0, max: 0 });
        if (i % 10 === 0) await store.saveInstance(instanceRecord(`q-${i}`, 'querier'));
      }
      // Floor: one lookup of the source's index entry per challenge, the hits' records read.
      const queryFloor = (): Promise<unknown> => {
        const root = join(dir, 'chall');
        const hits: string[] = [];
        for (const name of readdirSync(root)) {
          const entries = join(root, name, 'source', md5Hex('querier'));
          if (!existsSync(entries)) continue;
          hits.push(join(root, name, 'info.json'));
          for (const identity of readdirSync(entries))
            hits.push(join(root, name, 'instance', identity, 'info.json'));
        }
        return Promise.resolve(readParseEncode(hits));
      };
      row(
        `QueryInstance over ${QUERY_CHALLENGES + 2} challenges, floor: sync reads + encode`,
        summary(await sample(20, queryFloor)),
      );
      row(
        `QueryInstance of one source over ${QUERY_CHALLENGES + 2} challenges, REST`,
        summary(
          await sample(20, () =>
            fetch(`${api}/api/v1/instance?sourceId=querier`).then((r) => r.text()),
          ),
        ),
      );
    }
  } finally {
    for (const c of clients) c.close();
    for (const r of replicas) await r.stop();
    await etcd.stop();
    await registry.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

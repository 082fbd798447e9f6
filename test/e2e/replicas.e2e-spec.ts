import type { ServiceError } from '@grpc/grpc-js';
import { Etcd3, type IKeyValue } from 'etcd3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FsStateStore } from '../../src/adapters/state/fs-state-store.adapter';
import type { Instance } from '../../src/shared/domain';
import type { RpcStatusJson } from '../../src/shared/transport/rpc-status';
import { eventually, jsonInit, ndjson, timestampMs } from '../support/api-app';
import {
  gatedUpScenario,
  identityOfOutputsOnly,
  outputsOnlyScenario,
} from '../support/api-scenarios';
import { connectApiClients, statusDetails, type ApiClients } from '../support/grpc-client';
import { orasPush } from '../support/oras';
import {
  buildServiceIfStale,
  killProcessesWithEnv,
  startReplica,
  type Replica,
} from '../support/replica-process';
import { scenarioOf } from '../support/scenarios';
import { startEtcdCluster, type EtcdCluster } from '../support/services';
import { useToolchainPath } from '../support/toolchain';

/**
 * Issue 6 end to end: three real replicas (`node dist/main.js`) sharing one DIR and a real
 * 3-member etcd cluster on loopback. Concurrent creates across replicas, pooled claims across
 * replicas, an update and a delete through other replicas than the create, a replica killed
 * in the middle of a `pulumi up`, and etcd member and quorum loss.
 */

/**
 * Sources of the round-robin race, each created 10 times at once (1 000 creates, one instance per
 * source must survive them all): 100 real `pulumi up`s, 10 sources at a time on two cores.
 */
const SOURCES = 100;
const PER_SOURCE = 10;
/** Sources raced at the same time (each with its 10 concurrent creates): two cores. */
const SOURCE_WINDOW = 10;
const LEASE_TTL_S = 3;

const GRPC_ALREADY_EXISTS = 6;
const GRPC_UNAVAILABLE = 14;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
type Transport = 'REST' | 'gRPC';

/** What a call answered, whatever the transport. */
type Outcome =
  | { ok: true; transport: Transport; replica: string; body: Record<string, unknown> }
  | {
      ok: false;
      transport: Transport;
      replica: string;
      /** gRPC code (the REST body's `code`). */
      code: number | undefined;
      reason: unknown;
      message: string;
      /** REST only. */
      http?: number;
    };

/** A replica with clients of both transports. */
class Node {
  grpc: ApiClients;

  constructor(public replica: Replica) {
    this.grpc = connectApiClients(replica.address);
  }

  /** After a restart: the new process, new clients. */
  replace(replica: Replica): void {
    this.grpc.close();
    this.replica = replica;
    this.grpc = connectApiClients(replica.address);
  }

  get name(): string {
    return this.replica.name;
  }

  fetch(path: string, init?: RequestInit): Promise<Response> {
    return fetch(`${this.replica.base}${path}`, { signal: AbortSignal.timeout(300_000), ...init });
  }

  /** A REST call expected to answer 200 with JSON. */
  async rest(path: string, init?: RequestInit): Promise<Record<string, unknown>> {
    const res = await this.fetch(path, init);
    const text = await res.text();
    expect(res.status, `${this.name}: ${init?.method ?? 'GET'} ${path}: ${text}`).toBe(200);
    return JSON.parse(text) as Record<string, unknown>;
  }

  unary(service: 'challenge' | 'instance', method: string, request: object) {
    return this.grpc.unary(this.grpc[service], method)(request);
  }

  /** CreateInstance over one transport, as an outcome. */
  async create(
    transport: Transport,
    challengeId: string,
    sourceId: string,
    additional?: Record<string, string>,
  ): Promise<Outcome> {
    const replica = this.name;
    const request = { challengeId, sourceId, ...(additional ? { additional } : {}) };
    if (transport === 'REST') {
      const res = await this.fetch('/api/v1/instance', jsonInit('POST', request));
      const text = await res.text();
      const body = JSON.parse(text) as Record<string, unknown>;
      if (res.status === 200) return { ok: true, transport, replica, body };
      const status = body as unknown as RpcStatusJson;
      return {
        ok: false,
        transport,
        replica,
        http: res.status,
        code: status.code,
        reason: status.details?.[0]?.reason,
        message: status.message,
      };
    }
    return this.unary('instance', 'CreateInstance', request).then(
      (body): Outcome => ({ ok: true, transport, replica, body }),
      (err: unknown): Outcome => {
        const e = err as ServiceError;
        const status = statusDetails(e.metadata);
        return {
          ok: false,
          transport,
          replica,
          code: e.code,
          reason: status?.details[0]?.reason,
          message: e.details,
        };
      },
    );
  }
}

/** `since` of an instance, from either transport's JSON. */
function sinceMs(body: Record<string, unknown>): number {
  return typeof body.since === 'string' ? Date.parse(body.since) : timestampMs(body.since);
}

function expectOk(o: Outcome): Record<string, unknown> {
  if (!o.ok) throw new Error(`expected a success, got ${JSON.stringify(o)}`);
  return o.body;
}

let scratch: string;
let dir: string;
let markers: string;
let cluster: EtcdCluster;
/** A client of the replicas' etcd, to see the lock entries they hold. */
let etcd: Etcd3;
let env: Record<string, string>;
const nodes: Node[] = [];
let tiny: string;
let gated: string;
const store = (): FsStateStore => new FsStateStore({ dir });

const recordsOf = (challengeId: string): Promise<Instance[]> => store().listInstances(challengeId);
/** Identities that have a stack directory (`DIR/pulumi/stacks/<md5>/<identity>`). */
function stackDirsOf(challengeId: string): string[] {
  const root = join(dir, 'pulumi', 'stacks', md5(challengeId));
  return existsSync(root) ? readdirSync(root).sort() : [];
}

/** Every lock entry in etcd (the replicas' default prefix), with the lease it is bound to. */
async function lockEntries(): Promise<IKeyValue[]> {
  return (await etcd.getAll().prefix('/chall-manager/locks/').exec()).kvs;
}

async function startNode(name: string): Promise<Replica> {
  return startReplica({ name, dir, cache: join(scratch, `cache-${name}`), env });
}

beforeAll(async () => {
  useToolchainPath();
  const registry = inject('registry');
  scratch = mkdtempSync(join(tmpdir(), 'cm-replicas-'));
  dir = join(scratch, 'data');
  markers = join(scratch, 'markers');
  mkdirSync(markers);
  [tiny, gated] = await Promise.all([
    orasPush(
      registry,
      'replicas/outputs-only:v1',
      scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('replicas')),
    ),
    orasPush(
      registry,
      'replicas/gated-up:v1',
      scenarioOf(scratch, 'gated', gatedUpScenario(markers)),
    ),
    buildServiceIfStale(),
  ]);
  cluster = await startEtcdCluster();
  etcd = new Etcd3({ hosts: cluster.endpoints });
  env = {
    ETCD_ENDPOINT: cluster.endpoints.join(','),
    ETCD_LEASE_TTL: String(LEASE_TTL_S),
    // A sweep at boot (orphan stacks) and none after: no sweep runs in the middle of a test.
    JANITOR_TICKER: '1h',
    LOG_LEVEL: process.env.CM_TEST_LOG_LEVEL ?? 'warn',
  };
  // One at a time: their boot sweeps share the janitor lock anyway.
  for (const name of ['A', 'B', 'C']) nodes.push(new Node(await startNode(name)));
});

afterAll(async () => {
  for (const node of nodes) node.grpc.close();
  await Promise.all(nodes.map((n) => n.replica.stop()));
  // Pulumi plugins of the replica killed in the middle of an `up` (process groups of their own).
  if (dir) killProcessesWithEnv('DIR', dir);
  etcd?.close();
  await cluster?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const node = (i: number): Node => nodes[i % nodes.length]!;
const outputs = (): string => nodes.map((n) => `--- ${n.name}:\n${n.replica.output()}`).join('\n');
/** The replicas' warnings and errors, last 60 lines. */
const warnings = (): string =>
  outputs()
    .split('\n')
    .filter((line) => /^---|WARN|ERROR|"level":"(warn|error)"/.test(line))
    .slice(-60)
    .join('\n');

describe('three replicas sharing DIR and a 3-member etcd cluster', () => {
  it(`should create exactly ${SOURCES} instances and answer INSTANCE_ALREADY_EXISTS to the others when ${SOURCES} sources race ${PER_SOURCE} creates each over the three replicas`, async () => {
    const id = 'race';
    await node(0).rest('/api/v1/challenge', jsonInit('POST', { id, scenario: tiny }));
    const sources = Array.from({ length: SOURCES }, (_, s) => `src-${s}`);
    const outcomes: Outcome[] = [];
    const started = Date.now();
    let next = 0;
    // SOURCE_WINDOW sources in flight at a time, each with its PER_SOURCE creates at once,
    // round-robin over the replicas, every other one over gRPC.
    await Promise.all(
      Array.from({ length: SOURCE_WINDOW }, async () => {
        while (next < sources.length) {
          const s = next++;
          const round = await Promise.all(
            Array.from({ length: PER_SOURCE }, (_, k) => {
              const i = s * PER_SOURCE + k;
              return node(i).create(k % 2 === 0 ? 'REST' : 'gRPC', id, sources[s]!);
            }),
          );
          outcomes.push(...round);
        }
      }),
    );
    const elapsed = Date.now() - started;
    console.log(
      `[replicas] ${SOURCES} sources x ${PER_SOURCE} creates over 3 replicas: ${elapsed} ms ` +
        `(${(elapsed / SOURCES).toFixed(0)} ms per instance, ${SOURCE_WINDOW} sources at a time)`,
    );

    const failures = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    const successes = outcomes.filter((o) => o.ok);
    // No 5xx, no other error: only the expected conflicts.
    for (const f of failures) {
      // On failure, what the replicas logged about it (an unexpected error is rare and racy).
      expect(f, `${JSON.stringify(f)}\n${warnings()}`).toMatchObject({
        code: GRPC_ALREADY_EXISTS,
        reason: 'INSTANCE_ALREADY_EXISTS',
      });
      if (f.transport === 'REST') expect(f.http).toBe(409);
    }
    expect(successes).toHaveLength(SOURCES);
    expect(failures).toHaveLength(SOURCES * (PER_SOURCE - 1));
    // Every replica answered over both transports (who wins a race is the locks' business).
    expect(new Set(outcomes.map((o) => `${o.replica}/${o.transport}`))).toEqual(
      new Set(['A/REST', 'A/gRPC', 'B/REST', 'B/gRPC', 'C/REST', 'C/gRPC']),
    );
    const wins = (name: string): number => successes.filter((o) => o.replica === name).length;
    console.log(`[replicas] winners per replica: A ${wins('A')}, B ${wins('B')}, C ${wins('C')}`);
    // One winner per source.
    const winners = successes.map((o) => String(expectOk(o).sourceId)).sort();
    expect(winners).toEqual([...sources].sort());

    // On disk: one record per source, one stack per record.
    const records = await recordsOf(id);
    expect(records).toHaveLength(SOURCES);
    expect(records.map((r) => r.sourceId).sort()).toEqual([...sources].sort());
    expect(stackDirsOf(id)).toEqual(records.map((r) => r.identity).sort());
    // Through QueryChallenge, on both transports and other replicas.
    const lines = await ndjson(await node(2).fetch('/api/v1/challenge'));
    const restRace = lines
      .map((l) => l.result as Record<string, unknown> | undefined)
      .find((c) => c?.id === id);
    expect((restRace?.instances as unknown[] | undefined)?.length).toBe(SOURCES);
    const grpcAll = await node(1).grpc.stream(node(1).grpc.challenge, 'QueryChallenge')({});
    const grpcRace = grpcAll.find((c) => c.id === id);
    expect((grpcRace?.instances as unknown[] | undefined)?.length).toBe(SOURCES);
  }, 1_200_000);

  it('should claim each pooled instance once when 6 sources claim concurrently on different replicas', async () => {
    const id = 'pool';
    // max = min: the claims trigger no refill, so no spin-up competes with the test.
    await node(0).rest(
      '/api/v1/challenge',
      jsonInit('POST', { id, scenario: tiny, min: 6, max: 6 }),
    );
    await eventually(
      'the pool holds 6 instances',
      180_000,
      async () => (await recordsOf(id)).filter((i) => i.sourceId === undefined).length === 6,
      outputs,
    );
    const pooled = new Set((await recordsOf(id)).map((i) => i.identity));
    const requestedAt = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        node(i).create(i % 2 === 0 ? 'gRPC' : 'REST', id, `claimer-${i}`),
      ),
    );
    const bodies = outcomes.map(expectOk);
    const identities = bodies.map((b) => identityOfOutputsOnly(b.connectionInfo));
    expect(new Set(identities).size).toBe(6);
    for (const [i, body] of bodies.entries()) {
      expect(pooled.has(identities[i]!), `${identities[i]} was pooled`).toBe(true);
      // Deployed ahead, not on request.
      expect(sinceMs(body)).toBeLessThan(requestedAt);
      expect(body).toMatchObject({ challengeId: id, sourceId: `claimer-${i}` });
    }
    const records = await recordsOf(id);
    expect(records).toHaveLength(6);
    // No stack was deployed for the claims: the stacks are the pooled ones.
    expect(stackDirsOf(id)).toEqual([...pooled].sort());
    expect(Object.fromEntries(records.map((r) => [r.identity, r.sourceId]))).toEqual(
      Object.fromEntries(identities.map((identity, i) => [identity, `claimer-${i}`])),
    );
  });

  it('should show the new connection info through C when an instance created through A is updated blue-green through B', async () => {
    const id = 'bluegreen';
    const source = 'bg-source';
    const [a, b, c] = nodes as [Node, Node, Node];
    await a.rest('/api/v1/challenge', jsonInit('POST', { id, scenario: tiny }));
    const t0 = Date.now();
    const created = expectOk(await a.create('REST', id, source));
    console.log(`[replicas] one uncontended create (pull + up): ${Date.now() - t0} ms`);
    const oldIdentity = identityOfOutputsOnly(created.connectionInfo);
    expect(created.flags).toEqual([`PLUGIN{${oldIdentity}-0}`]);

    const updated = await b.unary('challenge', 'UpdateChallenge', {
      id,
      additional: { flags: '2' },
      updateMask: { paths: ['additional'] },
      updateStrategy: 'blue_green',
    });
    expect(updated).toMatchObject({ id, additional: { flags: '2' } });

    const viaGrpc = await c.unary('instance', 'RetrieveInstance', {
      challengeId: id,
      sourceId: source,
    });
    const viaRest = await c.rest(`/api/v1/instance/${id}/${source}`);
    const newIdentity = identityOfOutputsOnly(viaGrpc.connectionInfo);
    expect(newIdentity).not.toBe(oldIdentity);
    expect(newIdentity).toMatch(/^[0-9a-f]{16}$/);
    for (const seen of [viaGrpc, viaRest]) {
      expect(seen).toMatchObject({
        challengeId: id,
        sourceId: source,
        connectionInfo: `http://${newIdentity}.ctf.invalid`,
        flags: [`PLUGIN{${newIdentity}-0}`, `PLUGIN{${newIdentity}-1}`],
      });
    }
    // The old stack is gone, not orphaned.
    expect(stackDirsOf(id)).toEqual([newIdentity]);

    expect(await c.rest(`/api/v1/instance/${id}/${source}`, { method: 'DELETE' })).toEqual({});
    const res = await a.fetch(`/api/v1/instance/${id}/${source}`);
    expect(res.status, await res.text()).toBe(404);
    expect(await recordsOf(id)).toEqual([]);
    expect(stackDirsOf(id)).toEqual([]);
  });

  it('should keep serving, free the locks within the lease TTL and leave no orphan after a restart when a replica is killed in the middle of an up', async () => {
    const id = 'gated';
    const source = 'victim';
    const [a, b, c] = nodes as [Node, Node, Node];
    await b.rest('/api/v1/challenge', jsonInit('POST', { id, scenario: gated }));
    const hold = join(markers, 'hold');
    writeFileSync(hold, 'hold');
    const started = (): string[] =>
      readdirSync(markers)
        .filter((f) => f.startsWith('started-'))
        .map((f) => f.slice('started-'.length));
    // Through A, held in the middle of its `up`; A dies before it answers.
    const doomed = a.create('REST', id, source).catch((err: unknown) => err);
    await eventually(
      'the up through A is in progress',
      120_000,
      () => started().length === 1,
      outputs,
    );
    const [victim] = started() as [string];
    expect(stackDirsOf(id)).toEqual([victim]);

    const answers = async (at: Node): Promise<void> => {
      const health = await at.fetch('/healthcheck', { signal: AbortSignal.timeout(30_000) });
      expect(health.status).toBe(200);
      expect(await at.unary('challenge', 'RetrieveChallenge', { id })).toMatchObject({ id });
    };
    await answers(b);

    // Only A holds locks now (its `up` is held): its entries, bound to its lease of
    // ETCD_LEASE_TTL, which etcd expires within that TTL once nobody keeps it alive.
    const heldByA = (await lockEntries()).filter((kv) => kv.lease !== '0');
    expect(heldByA.length).toBeGreaterThan(0);
    expect(new Set(heldByA.map((kv) => kv.lease)).size).toBe(1);
    const { grantedTTL } = await etcd.leaseClient.leaseTimeToLive({ ID: heldByA[0]!.lease });
    expect(Number(grantedTTL)).toBe(LEASE_TTL_S);

    const killedAt = Date.now();
    await a.replica.crash();
    await doomed;
    // B and C serve meanwhile, while A's locks are held by its (expiring) lease.
    await answers(b);
    await answers(c);
    rmSync(hold);

    // A's source lock frees with its lease: a DeleteInstance of that source through B (it takes
    // the source lock first) waits for it, then finds no instance.
    const freed = await b.fetch(`/api/v1/instance/${id}/${source}`, { method: 'DELETE' });
    expect(freed.status, await freed.text()).toBe(404);
    const stillThere = new Set((await lockEntries()).map((kv) => kv.key.toString()));
    expect(heldByA.filter((kv) => stillThere.has(kv.key.toString()))).toEqual([]);
    console.log(
      `[replicas] A's source lock freed ${Date.now() - killedAt} ms after the kill (lease TTL ${LEASE_TTL_S} s)`,
    );

    // The same source through B: B deploys it.
    const outcome = await b.create('gRPC', id, source);
    const body = expectOk(outcome);
    const fresh = identityOfOutputsOnly(body.connectionInfo);
    expect(fresh).not.toBe(victim);
    expect(started().sort()).toEqual([victim, fresh].sort());
    // Consistent afterwards: the source has its instance.
    const again = await c.create('REST', id, source);
    expect(again).toMatchObject({ ok: false, code: GRPC_ALREADY_EXISTS, http: 409 });

    // A's stack of `victim` has no record: an orphan, until A's boot sweep.
    expect(stackDirsOf(id)).toEqual([victim, fresh].sort());
    a.replace(await startNode('A'));
    await eventually(
      'every stack directory has a record',
      120_000,
      async () => {
        for (const challenge of await store().listChallenges()) {
          const records = new Set((await recordsOf(challenge.id)).map((r) => r.identity));
          if (stackDirsOf(challenge.id).some((identity) => !records.has(identity))) return false;
        }
        return true;
      },
      outputs,
    );
    expect(stackDirsOf(id)).toEqual([fresh]);
    // Every record loads, through QueryChallenge on the restarted replica.
    const lines = await ndjson(await a.fetch('/api/v1/challenge'));
    for (const line of lines) expect(Object.keys(line)).toEqual(['result']);
    const seen = Object.fromEntries(
      lines.map((l) => {
        const challenge = l.result as { id: string; instances: unknown[] };
        return [challenge.id, challenge.instances.length];
      }),
    );
    expect(seen).toMatchObject({ race: SOURCES, pool: 6, bluegreen: 0, gated: 1 });
  });

  it("should answer INSTANCE_ALREADY_EXISTS through B while A's fresh creation of that source is still in its up", async () => {
    const id = 'gated-twice';
    const source = 'double-clicker';
    const [a, b, c] = nodes as [Node, Node, Node];
    await c.rest('/api/v1/challenge', jsonInit('POST', { id, scenario: gated }));
    const hold = join(markers, 'hold');
    writeFileSync(hold, 'hold');
    const before = new Set(readdirSync(markers));
    const mine = (): string[] =>
      readdirSync(markers).filter((f) => f.startsWith('started-') && !before.has(f));
    let firstAnswered = false;
    const first = a.create('REST', id, source).finally(() => (firstAnswered = true));
    try {
      await eventually(
        'the up through A is in progress',
        120_000,
        () => mine().length === 1,
        outputs,
      );
      // B answers while A's up is still held: from the mark, not after waiting for the lock.
      const duplicate = await b.create('gRPC', id, source);
      expect(duplicate).toMatchObject({ ok: false, code: GRPC_ALREADY_EXISTS });
      expect(firstAnswered).toBe(false);
    } finally {
      rmSync(hold, { force: true });
    }
    const created = expectOk(await first);
    // No second deployment was started, and the source has exactly the one instance.
    expect(mine()).toHaveLength(1);
    expect((await recordsOf(id)).map((r) => r.sourceId)).toEqual([source]);
    expect(await b.create('REST', id, source)).toMatchObject({ ok: false, http: 409 });
    // The mark is gone with the creation: the source's index holds its instance only.
    const index = join(dir, 'chall', md5(id), 'source', md5(source));
    expect(readdirSync(index)).toEqual([identityOfOutputsOnly(created.connectionInfo)]);
    for (const f of mine()) rmSync(join(markers, f));
    await c.rest(`/api/v1/challenge/${id}`, { method: 'DELETE' });
  });

  it('should continue after a short stall when the etcd leader is killed', async () => {
    const [, b, c] = nodes as [Node, Node, Node];
    const leader = await cluster.leader();
    await leader.kill();
    try {
      // Right after the loss, an operation that only takes locks (DeleteInstance takes the
      // source lock, then finds nothing): the etcd stall alone.
      // A lock call that outlives the etcd call budget answers UNAVAILABLE: these succeed, so
      // the stall stayed within it.
      const locked = await b.fetch('/api/v1/instance/race/nobody', { method: 'DELETE' });
      expect(locked.status, await locked.text()).toBe(404);
      const created = expectOk(await b.create('gRPC', 'race', 'after-leader-loss'));
      expect(created).toMatchObject({ challengeId: 'race', sourceId: 'after-leader-loss' });
      expect(await c.rest('/api/v1/instance/race/after-leader-loss')).toMatchObject({
        challengeId: 'race',
        sourceId: 'after-leader-loss',
      });
      await eventually('B reports healthy', 10_000, async () => {
        const res = await b.fetch('/healthcheck');
        await res.text();
        return res.status === 200;
      });
    } finally {
      leader.restart();
      await cluster.waitHealthy();
    }
  });

  it('should answer UNAVAILABLE, report Unavailable and corrupt nothing when etcd loses its quorum, then resume when it is back', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const lost = cluster.members.slice(0, 2);
    const recordsBefore = (await recordsOf('race')).length;
    await Promise.all(lost.map((m) => m.kill()));
    try {
      // The calls answer (none waits on etcd forever): the source lock's enqueue gave up on the
      // etcd call budget and said so.
      const viaGrpc = await b.create('gRPC', 'race', 'during-quorum-loss');
      const viaRest = await c.create('REST', 'race', 'during-quorum-loss');
      for (const outcome of [viaGrpc, viaRest]) {
        expect(outcome, JSON.stringify(outcome)).toMatchObject({
          ok: false,
          code: GRPC_UNAVAILABLE,
          reason: 'SERVICE_UNAVAILABLE',
        });
        if (!outcome.ok) expect(outcome.message).toMatch(/etcd unreachable/);
      }
      expect(viaRest).toMatchObject({ http: 503 });

      const health = await a.fetch('/healthcheck');
      const report = (await health.json()) as { status: string; failures?: Record<string, string> };
      expect(health.status).toBe(503);
      expect(report.status).toBe('Unavailable');
      expect(report.failures).toHaveProperty('etcd');

      // Nothing corrupted: every record loads, none was added.
      for (const challenge of await store().listChallenges()) await recordsOf(challenge.id);
      expect(await recordsOf('race')).toHaveLength(recordsBefore);
      expect((await recordsOf('race')).some((r) => r.sourceId === 'during-quorum-loss')).toBe(
        false,
      );
    } finally {
      for (const m of lost) m.restart();
      await cluster.waitHealthy();
    }
    // Back: a create succeeds (etcd3 retries an endpoint 5 s after its last failure).
    let outcome: Outcome | undefined;
    await eventually(
      'a create succeeds once the quorum is back',
      30_000,
      async () => {
        outcome = await b.create('gRPC', 'race', 'during-quorum-loss');
        if (!outcome.ok && outcome.code !== GRPC_UNAVAILABLE) {
          throw new Error(`unexpected answer: ${JSON.stringify(outcome)}`);
        }
        return outcome.ok;
      },
      () => JSON.stringify(outcome),
    );
    expect(await recordsOf('race')).toHaveLength(recordsBefore + 1);
    const health = await c.fetch('/healthcheck');
    await health.text();
    expect(health.status).toBe(200);
  });
});

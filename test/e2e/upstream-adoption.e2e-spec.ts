import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PulumiIacEngine } from '../../src/adapters/iac/pulumi-iac-engine.adapter';
import { AdoptionService } from '../../src/adoption';
import { BackgroundTasks } from '../../src/shared/background-tasks';
import {
  bootApiApp,
  jsonInit,
  readBanner,
  tcpClosed,
  timestampMs,
  type ApiApp,
} from '../support/api-app';
import { orasPush } from '../support/oras';
import { asFetched, EXAMPLES, NODE_MODULES, scenarioFrom } from '../support/scenarios';
import { useToolchainPath } from '../support/toolchain';

/**
 * Taking over an upstream DIR, end to end (real Pulumi CLI, real registry, real files): a DIR exactly as an
 * upstream chall-manager (Go, v0.6.6) leaves it, its instances deployed by a real `pulumi up` of
 * the nodejs flag server (a live TCP service each) in a Pulumi backend of their own (upstream's
 * `$HOME/.pulumi`, gone after the switch) and their deployments exported into the records'
 * `state`, as upstream's pkg/iac Extract stores them. Our service, started on that DIR, takes
 * every instance over: retrievable, renewable, claimable from the pool, updatable with each
 * strategy and deletable, the TCP services stopping with them, nothing orphaned.
 */

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const CHALLENGE = 'upstream-flag-server';
const PROJECT = 'nodejs-flag-server';
/** A challenge whose upstream records cannot be taken over: they must be reported, and kept. */
const BROKEN = 'upstream-broken';
const BROKEN_STATE = 'f6f6f6f6f6f6f6f6'; // a state whose URNs name no project
const BROKEN_TEXT = 'e5e5e5e5e5e5e5e5'; // an info.json cut short

/** One instance as upstream deployed it. */
interface UpstreamInstance {
  identity: string;
  sourceId?: string;
  connectionInfo: string;
  flag: string;
  /** The exact text of upstream's info.json. */
  info: string;
}

/** upstream's pkg/fs Instance, as Go's json.Encoder writes it (field order, trailing newline). */
function upstreamInfo(fields: {
  identity: string;
  state: unknown;
  since: string;
  until?: string;
  connectionInfo: string;
  flags: string[];
  additional?: Record<string, string>;
}): string {
  const doc: Record<string, unknown> = {
    identity: fields.identity,
    challenge_id: CHALLENGE,
    state: fields.state,
    since: fields.since,
    last_renew: fields.since,
  };
  if (fields.until !== undefined) doc.until = fields.until;
  doc.connection_info = fields.connectionInfo;
  doc.flags = fields.flags;
  if (fields.additional !== undefined) doc.additional = fields.additional;
  return `${JSON.stringify(doc)}\n`;
}

/** Every file under `dir` (relative path → content), scratch files of writes excluded. */
/**
 * The records under a challenge directory: the source index (`source/`) is ours, built at start
 * for every challenge, and is no record of upstream's.
 */
function records(challengeDir: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(snapshot(challengeDir)).filter(([path]) => !path.startsWith(`source${sep}`)),
  );
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true }).map(String).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isFile()) out[relative(dir, path)] = readFileSync(path, 'base64');
  }
  return out;
}

/** A Pulumi engine as upstream ran it: backend under `dataDir`, empty passphrase (pkg/iac LoadStack). */
function upstreamEngine(dataDir: string, cacheDir: string): PulumiIacEngine {
  return new PulumiIacEngine({
    dataDir,
    cacheDir,
    passphrase: '',
    operationTimeoutMs: 120_000,
    cancelGraceMs: 5_000,
    compileTimeoutMs: 300_000,
    programEnv: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    nodeModulesDir: NODE_MODULES,
  });
}

describe('adoption of an upstream chall-manager DIR', () => {
  let scratch: string;
  let dir: string;
  let reference: string;
  let svc: ApiApp | undefined;
  const upstream: UpstreamInstance[] = [];
  /** The records of the challenge that cannot be taken over, as upstream left them. */
  let brokenBefore: Record<string, string>;
  /** Every connection info seen: all must be closed at the end. */
  const served = new Set<string>();
  const instanceDir = (identity: string): string =>
    join(dir, 'chall', md5(CHALLENGE), 'instance', identity);
  const stackDirs = (): string[] => {
    const root = join(dir, 'pulumi', 'stacks', md5(CHALLENGE));
    return existsSync(root) ? readdirSync(root).sort() : [];
  };
  const checkpoints = (): string[] => {
    const root = join(dir, 'pulumi', 'backend', '.pulumi', 'stacks', PROJECT);
    return existsSync(root)
      ? readdirSync(root)
          .filter((f) => f.endsWith('.json'))
          .sort()
      : [];
  };
  const boot = async (): Promise<ApiApp> => {
    // The janitor is off: what a start does is the adoption alone.
    const app = await bootApiApp({ DIR: dir, JANITOR_TICKER: '0' });
    svc = app;
    return app;
  };
  const rest = async (path: string, init?: RequestInit): Promise<Record<string, unknown>> => {
    const res = await svc!.rest(path, init);
    const text = await res.text();
    expect(res.status, `${init?.method ?? 'GET'} ${path}: ${text}`).toBe(200);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const instancePath = (sourceId: string): string => `/api/v1/instance/${CHALLENGE}/${sourceId}`;

  beforeAll(async () => {
    useToolchainPath();
    scratch = mkdtempSync(join(tmpdir(), 'cm-adoption-'));
    dir = join(scratch, 'dir');
    reference = await orasPush(
      inject('registry'),
      'adoption/flag-server:v1',
      join(EXAMPLES, 'nodejs-flag-server'),
    );

    // upstream's Pulumi backend: its own directory, passphrase empty (pkg/iac LoadStack).
    const home = join(scratch, 'upstream-home');
    const deployer = upstreamEngine(home, join(scratch, 'upstream-cache'));
    const scenario = asFetched(scenarioFrom('nodejs-flag-server', scratch), reference);
    const wanted = [
      { identity: 'a1a1a1a1a1a1a1a1', sourceId: 'alice', additional: { prefix: 'UP' } },
      { identity: 'b2b2b2b2b2b2b2b2', sourceId: 'bob' },
      { identity: 'c3c3c3c3c3c3c3c3' }, // pooled: no claim file
    ];
    mkdirSync(join(dir, 'chall', md5(CHALLENGE), 'instance'), { recursive: true });
    // upstream's pkg/fs Challenge: timeout in integer nanoseconds, no digest.
    writeFileSync(
      join(dir, 'chall', md5(CHALLENGE), 'info.json'),
      `${JSON.stringify({ id: CHALLENGE, scenario: reference, timeout: 600_000_000_000, min: 1, max: 0 })}\n`,
    );
    for (const w of wanted) {
      const ref = { challengeId: CHALLENGE, identity: w.identity };
      const out = await deployer.up({ ...ref, scenario, additional: w.additional ?? {} });
      // upstream stores `udp.Deployment` of `stack.Export` (pkg/iac Extract).
      const exported = JSON.parse(
        execFileSync(
          'pulumi',
          ['stack', 'export', '--stack', `organization/${PROJECT}/${w.identity}`],
          {
            cwd: join(home, 'pulumi', 'stacks', md5(CHALLENGE), w.identity),
            env: {
              ...process.env,
              PULUMI_BACKEND_URL: `file://${join(home, 'pulumi', 'backend')}`,
              PULUMI_CONFIG_PASSPHRASE: '',
              PULUMI_SKIP_UPDATE_CHECK: 'true',
            },
            encoding: 'utf8',
          },
        ),
      ) as { version: number; deployment: unknown };
      expect(exported.version).toBe(3);
      const info = upstreamInfo({
        identity: w.identity,
        state: exported.deployment,
        // Go's time.Time text: nanoseconds, and the host's offset.
        since: '2026-12-02T10:15:30.123456789+01:00',
        ...(w.sourceId === undefined ? {} : { until: '2099-01-01T00:00:00.5Z' }),
        connectionInfo: out.connectionInfo,
        flags: out.flags,
        ...(w.additional === undefined ? {} : { additional: w.additional }),
      });
      mkdirSync(instanceDir(w.identity), { recursive: true });
      writeFileSync(join(instanceDir(w.identity), 'info.json'), info);
      if (w.sourceId !== undefined) {
        writeFileSync(join(instanceDir(w.identity), 'claim'), w.sourceId, { mode: 0o600 });
      }
      upstream.push({ ...w, connectionInfo: out.connectionInfo, flag: out.flags[0]!, info });
      served.add(out.connectionInfo);
      expect(await readBanner(out.connectionInfo)).toBe(out.flags[0]);
    }
    const brokenDir = join(dir, 'chall', md5(BROKEN));
    mkdirSync(join(brokenDir, 'instance', BROKEN_STATE), { recursive: true });
    mkdirSync(join(brokenDir, 'instance', BROKEN_TEXT), { recursive: true });
    writeFileSync(
      join(brokenDir, 'info.json'),
      `${JSON.stringify({ id: BROKEN, scenario: reference, min: 0, max: 0 })}\n`,
    );
    writeFileSync(
      join(brokenDir, 'instance', BROKEN_STATE, 'info.json'),
      upstreamInfo({
        identity: BROKEN_STATE,
        state: { resources: [{ urn: 'not-a-urn', type: 'x:y:Z' }] },
        since: '2026-12-02T10:15:30Z',
        connectionInfo: 'nc 127.0.0.1 9',
        flags: [],
      }).replace(`"challenge_id":"${CHALLENGE}"`, `"challenge_id":"${BROKEN}"`),
    );
    writeFileSync(join(brokenDir, 'instance', BROKEN_TEXT, 'info.json'), '{"identity":"e5e5');
    brokenBefore = records(brokenDir);

    // The switch: upstream's backend is gone with its container; the services still run.
    rmSync(home, { recursive: true, force: true });

    // Crashes in the middle of an earlier adoption (the engine is the service's, on the same DIR):
    // bob's stack imported, his record not yet rewritten; the pooled instance's import done but
    // not yet marked done (its stack.json, written last, missing).
    const bob = upstream[1]!;
    const pooled = upstream[2]!;
    const crashed = upstreamEngine(dir, join(scratch, 'crashed-cache'));
    for (const u of [bob, pooled]) {
      await crashed.adopt(
        { challengeId: CHALLENGE, identity: u.identity },
        (JSON.parse(u.info) as { state: unknown }).state,
      );
      expect(readFileSync(join(instanceDir(u.identity), 'info.json'), 'utf8')).toBe(u.info);
    }
    rmSync(join(dir, 'pulumi', 'stacks', md5(CHALLENGE), pooled.identity, 'stack.json'));
    expect(stackDirs()).toEqual([bob.identity, pooled.identity]);
  });

  afterAll(async () => {
    await svc?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('should import every upstream stack at start and rewrite its record keeping what upstream recorded', async () => {
    const app = await boot();
    expect(await app.app.get(AdoptionService).whenDone()).toEqual({ adopted: 3, failed: 1 });

    expect(stackDirs()).toEqual(upstream.map((u) => u.identity).sort());
    expect(checkpoints()).toEqual(upstream.map((u) => `${u.identity}.json`).sort());
    for (const u of upstream) {
      const before = JSON.parse(u.info) as Record<string, unknown>;
      const after = JSON.parse(
        readFileSync(join(instanceDir(u.identity), 'info.json'), 'utf8'),
      ) as Record<string, unknown>;
      expect(after).not.toHaveProperty('state');
      expect(after).toEqual({
        identity: u.identity,
        challenge_id: CHALLENGE,
        // The same instants (Go's nanoseconds kept to the millisecond, as every record of ours).
        since: '2026-12-02T09:15:30.123Z',
        last_renew: '2026-12-02T09:15:30.123Z',
        ...(before.until === undefined ? {} : { until: '2099-01-01T00:00:00.5Z' }),
        connection_info: u.connectionInfo,
        flags: [u.flag],
        ...(before.additional === undefined ? {} : { additional: before.additional }),
      });
      const claim = join(instanceDir(u.identity), 'claim');
      expect(existsSync(claim) ? readFileSync(claim, 'utf8') : undefined).toBe(u.sourceId);
      // Each stack holds the live flag server that upstream deployed.
      const checkpoint = readFileSync(
        join(dir, 'pulumi', 'backend', '.pulumi', 'stacks', PROJECT, `${u.identity}.json`),
        'utf8',
      );
      expect(checkpoint).toContain('pulumi-nodejs:dynamic:Resource');
    }
    // What could not be taken over is reported (not critical: the service serves), and kept.
    const health = await rest('/healthcheck');
    expect(health.status).toBe('Partially Available');
    const reported = (health.failures as Record<string, string>).adoption;
    expect(reported).toContain('2 record(s)');
    expect(reported).toContain(
      `chall/${md5(BROKEN)}/instance/${BROKEN_STATE}/info.json: not adopted`,
    );
    expect(reported).toContain(
      `chall/${md5(BROKEN)}/instance/${BROKEN_TEXT}/info.json: unreadable`,
    );
    expect(records(join(dir, 'chall', md5(BROKEN)))).toEqual(brokenBefore);
  });

  it('should change nothing when started again', async () => {
    await svc!.close();
    svc = undefined;
    const before = snapshot(dir);
    const app = await boot();
    // The records it could not take over are tried again, and reported again.
    expect(await app.app.get(AdoptionService).whenDone()).toEqual({ adopted: 0, failed: 1 });
    expect(snapshot(dir)).toEqual(before);
  });

  it('should retrieve and renew the adopted instances, which still serve their flags', async () => {
    for (const u of upstream.filter((i) => i.sourceId !== undefined)) {
      const got = await rest(instancePath(u.sourceId!));
      expect(got).toMatchObject({ connectionInfo: u.connectionInfo, flags: [u.flag] });
      expect(await readBanner(u.connectionInfo)).toBe(u.flag);
    }
    const grpc = svc!.grpc;
    const renewed = await grpc.unary(
      grpc.instance,
      'RenewInstance',
    )({
      challengeId: CHALLENGE,
      sourceId: 'alice',
    });
    // Renewal restarts the 600 s timeout from now (upstream's ComputeUntil).
    expect(timestampMs(renewed.until)).toBeLessThan(Date.parse('2099-01-01T00:00:00Z'));
    expect(timestampMs(renewed.until)).toBeGreaterThan(Date.now() + 500_000);
  });

  it('should hand the adopted pooled instance to the first new source', async () => {
    const pooled = upstream[2]!;
    const claimed = await rest(
      '/api/v1/instance',
      jsonInit('POST', { challengeId: CHALLENGE, sourceId: 'carol' }),
    );
    expect(claimed).toMatchObject({ connectionInfo: pooled.connectionInfo, flags: [pooled.flag] });
    expect(readFileSync(join(instanceDir(pooled.identity), 'claim'), 'utf8')).toBe('carol');
    // The pool (min 1) is refilled in the background.
    await svc!.app.get(BackgroundTasks).drain();
  });

  it.each([
    ['update_in_place', 'INPLACE'],
    ['blue_green', 'BLUEGREEN'],
    ['recreate', 'RECREATE'],
  ])(
    'should redeploy every adopted instance with %s, the old flag servers stopping',
    async (strategy, prefix) => {
      const sources = ['alice', 'bob', 'carol'];
      const before = await Promise.all(sources.map((s) => rest(instancePath(s))));
      await rest(
        `/api/v1/challenge/${CHALLENGE}`,
        jsonInit('PATCH', {
          additional: { prefix },
          updateStrategy: strategy,
          updateMask: 'additional',
        }),
      );
      for (const [index, sourceId] of sources.entries()) {
        const after = await rest(instancePath(sourceId));
        const info = String(after.connectionInfo);
        served.add(info);
        const [flag] = after.flags as string[];
        // alice's own additional (prefix UP) wins over the challenge's, as upstream merges them.
        expect(flag).toMatch(new RegExp(`^${sourceId === 'alice' ? 'UP' : prefix}\\{`));
        expect(await readBanner(info)).toBe(flag);
        const old = String(before[index]!.connectionInfo);
        if (old !== info) expect(await tcpClosed(old)).toBe(true);
      }
      // The upstream processes were replaced (alice's flag, kept by her own prefix, changes
      // only with her identity, at the blue-green update).
      for (const u of upstream.filter(
        (i) => strategy !== 'update_in_place' || i.sourceId !== 'alice',
      )) {
        expect(await tcpClosed(u.connectionInfo)).toBe(true);
      }
    },
  );

  it('should delete every instance, stop its TCP service and leave nothing behind', async () => {
    for (const sourceId of ['alice', 'bob', 'carol']) {
      const info = String((await rest(instancePath(sourceId))).connectionInfo);
      expect(await rest(instancePath(sourceId), { method: 'DELETE' })).toEqual({});
      expect(await tcpClosed(info)).toBe(true);
    }
    // The pooled instances (the refill) go with the challenge.
    expect(await rest(`/api/v1/challenge/${CHALLENGE}`, { method: 'DELETE' })).toEqual({});
    expect(stackDirs()).toEqual([]);
    expect(checkpoints()).toEqual([]);
    expect(existsSync(join(dir, 'chall', md5(CHALLENGE)))).toBe(false);
    for (const info of served) expect(await tcpClosed(info)).toBe(true);
    // What could not be taken over is still there, untouched, for an operator to look at.
    expect(records(join(dir, 'chall', md5(BROKEN)))).toEqual(brokenBefore);
  });
});

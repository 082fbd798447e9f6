import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LOOK_ALIKES, variate, type VariateOptions } from '../../sdk/nodejs/src/variate';
import { bootApiApp, jsonInit, type ApiApp } from '../support/api-app';
import { orasPush } from '../support/oras';
import { EXAMPLES, NODE_MODULES } from '../support/scenarios';

/**
 * The scenario SDK (@chall-manager/sdk) end to end: the TypeScript example written with it,
 * pushed to the real registry and deployed by the real service (real Pulumi CLI, no
 * node_modules in the scenario), gives each instance its own flags; and `variate` gives what
 * upstream's Go algorithm gives with Go's own math/rand.
 */

const execFileAsync = promisify(execFile);
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** The example's defaults (examples/nodejs-sdk/index.ts). */
const EXAMPLE_FLAG = 'CTF{typescript_scenarios_vary_their_flags}';
const EXAMPLE_BONUS = 'CTF{bonus}';
const examplePort = (identity: string): number =>
  30000 + (parseInt(identity.slice(0, 4), 16) % 2768);

describe('the SDK example scenario deployed through the API', () => {
  const challengeId = 'sdk-example';
  let svc: ApiApp;
  let scenario: string;

  beforeAll(async () => {
    // Scenarios get the SDK the build made (npm run build): its entry point must be there.
    const entry = join(NODE_MODULES, '@chall-manager', 'sdk', 'dist', 'index.js');
    expect(existsSync(entry), `${entry} (run npm run build)`).toBe(true);
    svc = await bootApiApp();
    scenario = await orasPush(
      inject('registry'),
      'sdk/nodejs-sdk:v1',
      join(EXAMPLES, 'nodejs-sdk'),
    );
  });
  afterAll(async () => {
    await svc?.close();
  });

  /** The identity of the instance a source claimed, from the claim files under DIR. */
  const identityOf = (sourceId: string): string => {
    const instances = join(svc.dir, 'chall', md5(challengeId), 'instance');
    const found = readdirSync(instances).filter(
      (identity) =>
        /^[0-9a-f]{16}$/.test(identity) &&
        existsSync(join(instances, identity, 'claim')) &&
        readFileSync(join(instances, identity, 'claim'), 'utf8') === sourceId,
    );
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  /** The stack's state as Pulumi wrote it under DIR (file backend). */
  const stateOf = (identity: string): string =>
    readFileSync(
      join(svc.dir, 'pulumi', 'backend', '.pulumi', 'stacks', 'nodejs-sdk', `${identity}.json`),
      'utf8',
    );

  it('should create the challenge: the TypeScript scenario previews without node_modules', async () => {
    const res = await svc.rest(
      '/api/v1/challenge',
      jsonInit('POST', { id: challengeId, scenario, additional: { host: 'sdk.ctf.test' } }),
    );
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { scenario: string }).scenario).toBe(scenario);
  });

  it('should give each source flags of its own, the variants of its identity, secret in the state', async () => {
    const rest = await svc.rest(
      '/api/v1/instance',
      jsonInit('POST', { challengeId, sourceId: 'team-rest' }),
    );
    expect(rest.status, await rest.clone().text()).toBe(200);
    const a = (await rest.json()) as { connectionInfo: string; flags: string[]; flag?: string };
    const b = (await svc.grpc.unary(
      svc.grpc.instance,
      'CreateInstance',
    )({
      challengeId,
      sourceId: 'team-grpc',
      additional: { flag: 'CTF{this_team_has_another_flag}' },
    })) as { connectionInfo: string; flags: string[] };

    const idA = identityOf('team-rest');
    const idB = identityOf('team-grpc');
    expect(idA).not.toBe(idB);

    // As the example says: `nc <additional.host> <port from the identity>`.
    expect(a.connectionInfo).toBe(`nc sdk.ctf.test ${examplePort(idA)}`);
    expect(b.connectionInfo).toBe(`nc sdk.ctf.test ${examplePort(idB)}`);
    // The flags are the variants the test computes with the SDK for each identity.
    expect(a.flags).toEqual([
      variate(idA, EXAMPLE_FLAG),
      variate(idA, EXAMPLE_BONUS, { special: true }),
    ]);
    expect(b.flags).toEqual([
      variate(idB, 'CTF{this_team_has_another_flag}'),
      variate(idB, EXAMPLE_BONUS, { special: true }),
    ]);
    // Two flags: the deprecated single `flag` field stays unset.
    expect(a.flag).toBeUndefined();
    // Each team's flag is its own.
    expect(variate(idB, EXAMPLE_FLAG)).not.toBe(a.flags[0]);
    expect(a.flags[0]).not.toBe(EXAMPLE_FLAG);

    // Through the flag check API, each team's flags are valid for it, and one team's flag
    // submitted by the other is reported as shared.
    const check = async (sourceId: string, flag: string): Promise<unknown> => {
      const res = await svc.rest(
        '/api/v1/flag/check',
        jsonInit('POST', { challengeId, sourceId, flag }),
      );
      expect(res.status).toBe(200);
      return res.json();
    };
    for (const flag of a.flags) expect(await check('team-rest', flag)).toEqual({ valid: true });
    for (const flag of b.flags) expect(await check('team-grpc', flag)).toEqual({ valid: true });
    expect(await check('team-grpc', a.flags[0]!)).toEqual({
      valid: false,
      sharedFrom: 'team-rest',
    });

    // The flags are Pulumi secrets: ciphertext in the stack's state, never the flags in clear.
    for (const [identity, seen] of [
      [idA, a],
      [idB, b],
    ] as const) {
      const text = stateOf(identity);
      for (const flag of seen.flags) expect(text).not.toContain(JSON.stringify(flag).slice(1, -1));
      const state = JSON.parse(text) as {
        checkpoint: {
          latest: { resources: { type: string; outputs?: Record<string, unknown> }[] };
        };
      };
      const stack = state.checkpoint.latest.resources.find((r) => r.type === 'pulumi:pulumi:Stack');
      expect(stack?.outputs?.connection_info).toBe(seen.connectionInfo);
      expect(stack?.outputs?.flags).toMatchObject({
        '4dabf18193072939515e22adb298388d': '1b47061264138c4ac30d75fd1eb44270',
        ciphertext: expect.any(String) as unknown,
      });
    }
  });

  it('should delete the instances and the challenge', async () => {
    for (const source of ['team-rest', 'team-grpc']) {
      const res = await svc.rest(`/api/v1/instance/${challengeId}/${source}`, { method: 'DELETE' });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    const res = await svc.rest(`/api/v1/challenge/${challengeId}`, { method: 'DELETE' });
    expect(res.status, await res.clone().text()).toBe(200);
  });
});

describe("variate against upstream's algorithm with Go's math/rand", () => {
  let scratch: string;
  let reference: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'cm-sdk-e2e-'));
    reference = join(scratch, 'go-variate');
    await execFileAsync('go', ['build', '-o', reference, '.'], {
      cwd: resolve(__dirname, 'fixtures', 'go-variate'),
      env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
    });
  });
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  /** What the Go reference answers for each case (one process, JSON lines both ways). */
  const goVariants = (
    cases: { identity: string; flag: string; options: Required<VariateOptions> }[],
  ): Promise<string[]> =>
    new Promise((done, fail) => {
      const child = spawn(reference, [], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.once('error', fail);
      child.once('exit', (code) => {
        if (code !== 0) fail(new Error(`go-variate exited with ${code}`));
        else
          done(
            out
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l) as string),
          );
      });
      child.stdin.end(
        [JSON.stringify(LOOK_ALIKES), ...cases.map((c) => JSON.stringify(c))].join('\n') + '\n',
      );
    });

  it('should give the variant Go gives for 2000 random identities, flags and options', async () => {
    // A seeded generator (mulberry32): the same cases on every run.
    let s = 0x2000;
    const next = (): number => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = (alphabet: string, min: number, max: number): string =>
      Array.from(
        { length: min + Math.floor(next() * (max - min + 1)) },
        () => alphabet[Math.floor(next() * alphabet.length)],
      ).join('');
    const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).join('');
    const cases = Array.from({ length: 2000 }, (_, i) => ({
      // Mostly identities as the service makes them; some short or odd ones (padding, seeds).
      identity: i % 5 === 0 ? pick(printable, 1, 12) : pick('0123456789abcdef', 16, 16),
      flag: pick(printable, 1, 64),
      options: {
        lowercase: next() < 0.8,
        uppercase: next() < 0.8,
        numeric: next() < 0.8,
        special: next() < 0.5,
      },
    }));
    const expected = await goVariants(cases);
    expect(expected).toHaveLength(cases.length);
    const ours = cases.map((c) => variate(c.identity, c.flag, c.options));
    const differing = cases.filter((_, i) => ours[i] !== expected[i]);
    expect(differing).toEqual([]);
    // The cases vary flags at all: most variants differ from their flag.
    expect(cases.filter((c, i) => expected[i] !== c.flag).length).toBeGreaterThan(1500);
  });
});

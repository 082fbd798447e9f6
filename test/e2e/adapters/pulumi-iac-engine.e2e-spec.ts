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
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  PulumiIacEngine,
  type PulumiIacEngineOptions,
} from '../../../src/adapters/iac/pulumi-iac-engine.adapter';
import {
  IacOperationError,
  IacTimeoutError,
  ScenarioInvalidError,
} from '../../../src/shared/errors';
import type { PendingCreate } from '../../../src/shared/ports';
import { iacEngineContract } from '../../contract/iac-engine.contract';
import { failingUpScenario, outputsOnlyScenario } from '../../support/api-scenarios';
import { killProcessesWithEnv } from '../../support/replica-process';
import { asFetched, NODE_MODULES, scenarioFrom, scenarioOf } from '../../support/scenarios';
import { useToolchainPath } from '../../support/toolchain';

/** Reads what a TCP service says on connection; rejects if nothing listens. */
function readBanner(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    let data = '';
    c.on('data', (d) => (data += String(d)));
    c.on('end', () => resolve(data.trim()));
    c.on('error', reject);
  });
}

const portOf = (connectionInfo: string): number =>
  Number(/nc 127\.0\.0\.1 (\d+)/.exec(connectionInfo)?.[1]);

const GO_MAIN_FILE = 'main.go';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** Processes whose environment holds `name=value`. */
function processesWithEnv(name: string, value: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .includes(`${name}=${value}`);
      } catch {
        return false;
      }
    });
}

/** Pending creates recorded for one stack (other tests' cancelled creates are recorded too). */
const pendingOf = async (engine: PulumiIacEngine, identity: string): Promise<PendingCreate[]> =>
  (await engine.pendingCreates()).filter((p) => p.identity === identity);

const commOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

// The port's contract, with the real CLI: a quick outputs-only scenario, and one whose `up`
// creates a marker file (a resource outside the state) before failing.
iacEngineContract('PulumiIacEngine', () => {
  useToolchainPath();
  const scratch = mkdtempSync(join(tmpdir(), 'cm-iac-contract-'));
  const markers = join(scratch, 'markers');
  mkdirSync(markers);
  const engine = new PulumiIacEngine({
    dataDir: join(scratch, 'data'),
    cacheDir: join(scratch, 'cache'),
    passphrase: 'contract-passphrase',
    operationTimeoutMs: 120_000,
    cancelGraceMs: 5_000,
    compileTimeoutMs: 300_000,
    programEnv: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    nodeModulesDir: NODE_MODULES,
  });
  const scenario = asFetched(scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('contract')));
  const failing = asFetched(scenarioOf(scratch, 'failing-up', failingUpScenario(markers)));
  return Promise.resolve({
    engine,
    scenario,
    failingUp: () => failing,
    leftOf: (stack) => readdirSync(markers).filter((f) => f === `marker-${stack.identity}`),
    cleanup: () => Promise.resolve(rmSync(scratch, { recursive: true, force: true })),
  });
});

describe('PulumiIacEngine', () => {
  let scratch: string;
  let opts: PulumiIacEngineOptions;
  let engine: PulumiIacEngine;

  beforeAll(() => {
    useToolchainPath();
    scratch = mkdtempSync(join(tmpdir(), 'cm-iac-'));
    opts = {
      dataDir: join(scratch, 'data'),
      cacheDir: join(scratch, 'cache'),
      passphrase: 'test-passphrase',
      operationTimeoutMs: 120_000,
      cancelGraceMs: 5_000,
      compileTimeoutMs: 300_000,
      programEnv: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      nodeModulesDir: NODE_MODULES,
    };
    engine = new PulumiIacEngine(opts);
  });

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  const stacksOf = (identity: string): string[] => {
    // Everything Pulumi keeps of a stack: checkpoints, backups, history, locks.
    const backend = join(opts.dataDir, 'pulumi', 'backend', '.pulumi');
    return existsSync(backend)
      ? readdirSync(backend, { recursive: true })
          .map(String)
          .filter((f) => f.includes(identity))
      : [];
  };

  describe('up and destroy', () => {
    it('should serve the flag over TCP when the nodejs scenario is up and close the port when destroyed', async () => {
      const scenario = asFetched(scenarioFrom('nodejs-flag-server', scratch));
      const ref = { challengeId: 'node-1', identity: '0123456789abcdef' };
      const out = await engine.up({ ...ref, scenario, additional: {} });
      expect(out.flags).toHaveLength(1);
      expect(out.flags[0]).toMatch(/^CTF\{[0-9a-f]{24}\}$/);
      const port = portOf(out.connectionInfo);
      expect(await readBanner(port)).toBe(out.flags[0]);

      await engine.destroy(ref);
      await expect(readBanner(port)).rejects.toThrow(/ECONNREFUSED/);
      expect(existsSync(join(opts.dataDir, 'pulumi', 'stacks'))).toBe(true);
    });

    it('should derive outputs from identity when a go scenario is compiled from main.go', async () => {
      const scenario = asFetched(scenarioFrom('go-minimal', scratch));
      const ref = { challengeId: 'go-compiled', identity: 'aaaaaaaaaaaaaaaa' };
      const out = await engine.up({ ...ref, scenario, additional: { prefix: 'GO' } });
      expect(out.connectionInfo).toBe('https://aaaaaaaaaaaaaaaa.go-minimal.example');
      expect(out.flags).toEqual([expect.stringMatching(/^GO\{[0-9a-f]{24}\}$/)]);
      await engine.destroy(ref);
    });

    it('should run the prebuilt binary when the go scenario names one', async () => {
      const dir = scenarioFrom('go-minimal', scratch, {
        'Pulumi.yaml':
          'name: go-prebuilt\nruntime:\n  name: go\n  options:\n    binary: ./bin/scenario\n',
      });
      execFileSync('go', ['build', '-o', 'bin/scenario', '.'], {
        cwd: dir,
        env: { ...process.env, CGO_ENABLED: '0' },
      });
      rmSync(join(dir, GO_MAIN_FILE));
      const ref = { challengeId: 'go-prebuilt', identity: 'bbbbbbbbbbbbbbbb' };
      const out = await engine.up({ ...ref, scenario: asFetched(dir), additional: {} });
      expect(out.connectionInfo).toBe('https://bbbbbbbbbbbbbbbb.go-minimal.example');
      await engine.destroy(ref);
    });

    it('should change the outputs and keep one stack when updated in place with a new additional', async () => {
      const scenario = asFetched(scenarioFrom('nodejs-flag-server', scratch));
      const ref = { challengeId: 'node-update', identity: '1111111111111111' };
      const first = await engine.up({ ...ref, scenario, additional: {} });
      const second = await engine.up({ ...ref, scenario, additional: { prefix: 'NEW' } });
      expect(second.flags[0]).toMatch(/^NEW\{/);
      expect(second.flags[0]?.slice(3)).toBe(first.flags[0]?.slice(3));
      expect(await readBanner(portOf(second.connectionInfo))).toBe(second.flags[0]);
      // The old process was replaced, not leaked.
      await expect(readBanner(portOf(first.connectionInfo))).rejects.toThrow(/ECONNREFUSED/);

      // Another process (a fresh adapter) finds the stack under DIR and destroys it.
      await new PulumiIacEngine(opts).destroy(ref);
      await expect(readBanner(portOf(second.connectionInfo))).rejects.toThrow(/ECONNREFUSED/);
      expect(stacksOf('1111111111111111')).toEqual([]);
    });

    it('should keep stacks apart when two are deployed in parallel', async () => {
      const scenario = asFetched(scenarioFrom('nodejs-flag-server', scratch));
      const a = { challengeId: 'node-par', identity: '2222222222222222' };
      const b = { challengeId: 'node-par', identity: '3333333333333333' };
      const [outA, outB] = await Promise.all([
        engine.up({ ...a, scenario, additional: {} }),
        engine.up({ ...b, scenario, additional: {} }),
      ]);
      expect(outA.flags[0]).not.toBe(outB.flags[0]);
      expect(await readBanner(portOf(outA.connectionInfo))).toBe(outA.flags[0]);
      expect(await readBanner(portOf(outB.connectionInfo))).toBe(outB.flags[0]);
      await Promise.all([engine.destroy(a), engine.destroy(b)]);
    });

    it('should succeed when destroying a stack that does not exist', async () => {
      await expect(
        engine.destroy({ challengeId: 'nothing', identity: '4444444444444444' }),
      ).resolves.toBeUndefined();
    });
  });

  describe('failures leave no orphans', () => {
    const failing = (marker: string): Record<string, string> => ({
      'Pulumi.yaml': 'name: failing\nruntime: nodejs\n',
      'index.js': `
        const pulumi = require('@pulumi/pulumi');
        const marker = ${JSON.stringify(marker)};
        const provider = {
          async create() { require('node:fs').writeFileSync(marker, 'created'); return { id: 'm', outs: {} }; },
          async delete() { require('node:fs').rmSync(marker, { force: true }); },
        };
        const r = new pulumi.dynamic.Resource(provider, 'marker', {});
        r.id.apply(() => { throw new Error('scenario bug after creating a resource'); });
        exports.connection_info = 'never';
      `,
    });

    it('should destroy what it created and remove the stack when the program fails after creating a resource', async () => {
      const marker = join(scratch, 'marker-1');
      const scenario = asFetched(scenarioOf(scratch, 'failing-1', failing(marker)));
      const ref = { challengeId: 'failing', identity: '5555555555555555' };
      await expect(engine.up({ ...ref, scenario, additional: {} })).rejects.toBeInstanceOf(
        IacOperationError,
      );
      expect(existsSync(marker)).toBe(false);
      expect(stacksOf('5555555555555555')).toEqual([]);
      expect(existsSync(join(opts.dataDir, 'pulumi', 'stacks'))).toBe(true);
    });

    it('should clean up and say so when the program exports no connection_info', async () => {
      const marker = join(scratch, 'marker-2');
      const files = failing(marker);
      files['index.js'] = files['index.js']!.replace(
        "r.id.apply(() => { throw new Error('scenario bug after creating a resource'); });",
        '',
      ).replace("exports.connection_info = 'never';", 'exports.other = r.id;');
      const scenario = asFetched(scenarioOf(scratch, 'no-info', files));
      const ref = { challengeId: 'no-info', identity: '6666666666666666' };
      const err = await engine.up({ ...ref, scenario, additional: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ScenarioInvalidError);
      expect((err as ScenarioInvalidError).problem).toContain('connection_info');
      expect(existsSync(marker)).toBe(false);
      expect(stacksOf('6666666666666666')).toEqual([]);
    });

    it('should cancel, clean up and fail when the operation outlives its timeout', async () => {
      const marker = join(scratch, 'marker-3');
      const files = failing(marker);
      files['index.js'] = files['index.js']!.replace(
        "r.id.apply(() => { throw new Error('scenario bug after creating a resource'); });",
        "new pulumi.dynamic.Resource({ async create() { await new Promise((r) => setTimeout(r, 600000)); return { id: 'x', outs: {} }; } }, 'hang', {}, { dependsOn: [r] });",
      );
      const scenario = asFetched(scenarioOf(scratch, 'hanging', files));
      const slowEngine = new PulumiIacEngine({ ...opts, operationTimeoutMs: 8_000 });
      const ref = { challengeId: 'hanging', identity: '7777777777777777' };
      // The hanging create runs for 10 minutes: settling at all, with IacTimeoutError, is the
      // operation timeout at work.
      await expect(slowEngine.up({ ...ref, scenario, additional: {} })).rejects.toBeInstanceOf(
        IacTimeoutError,
      );
      expect(existsSync(marker)).toBe(false);
      expect(stacksOf('7777777777777777')).toEqual([]);
    });
  });

  describe('a Pulumi process killed during a create', () => {
    it('should record the create Pulumi drops, list it and keep it listed when the stack is destroyed', async () => {
      const marker = join(scratch, 'pending-create-started');
      const run = `kill-${Date.now()}`;
      // `server` stands for a flag server: its create has started (marker) and is still running.
      const scenario = asFetched(
        scenarioOf(scratch, 'slow-create', {
          'Pulumi.yaml': 'name: slow-create\nruntime: nodejs\n',
          'index.js': `
            const pulumi = require('@pulumi/pulumi');
            const server = new pulumi.dynamic.Resource({
              async create() {
                require('node:fs').writeFileSync(${JSON.stringify(marker)}, String(process.pid));
                await new Promise((r) => setTimeout(r, 600000));
                return { id: 'server', outs: {} };
              },
            }, 'server', {});
            exports.connection_info = server.id;
          `,
        }),
      );
      const killable = new PulumiIacEngine({
        ...opts,
        programEnv: { ...opts.programEnv, CM_TEST_RUN: run },
      });
      const ref = { challengeId: 'killed', identity: '9999999999999999' };
      try {
        const up = killable.up({ ...ref, scenario, additional: {} }).catch((e: unknown) => e);
        await vi.waitFor(() => expect(existsSync(marker), 'the create never started').toBe(true), {
          timeout: 60_000,
          interval: 100,
        });
        // `kill -9` of the CLI while the create is in flight, as in a crash.
        const cli = processesWithEnv('CM_TEST_RUN', run).filter((pid) => commOf(pid) === 'pulumi');
        expect(cli).toHaveLength(1);
        process.kill(cli[0]!, 'SIGKILL');
        expect(await up).toBeInstanceOf(IacOperationError);

        // The failed up destroyed its stack; the create Pulumi dropped is recorded, not forgotten.
        expect(stacksOf(ref.identity)).toEqual([]);
        const pending = [
          {
            ...ref,
            urn: 'urn:pulumi:9999999999999999::slow-create::pulumi-nodejs:dynamic:Resource::server',
            foundAt: expect.any(String) as string,
          },
        ];
        expect(await pendingOf(killable, ref.identity)).toEqual(pending);
        // Any replica sees it (it lives under DIR), and it stays until an operator removes it.
        expect(await pendingOf(new PulumiIacEngine(opts), ref.identity)).toEqual(pending);
        await killable.destroy(ref);
        expect(await pendingOf(killable, ref.identity)).toEqual(pending);
        const record = join(opts.dataDir, 'pulumi', 'pending', `${ref.identity}.json`);
        expect(statSync(record).mode & 0o777).toBe(0o600);
        expect(readFileSync(record, 'utf8')).toContain('::server');
      } finally {
        killProcessesWithEnv('CM_TEST_RUN', run);
        rmSync(join(opts.dataDir, 'pulumi', 'pending', `${ref.identity}.json`), { force: true });
      }
    });
  });

  describe('leftovers of failed operations', () => {
    it('should remove the state of a stack left without project directory and stale temp files, and nothing else', async () => {
      const files = {
        'Pulumi.yaml': 'name: leftover\nruntime: nodejs\n',
        'index.js': "exports.connection_info = 'nothing';",
      };
      const scenario = asFetched(scenarioOf(scratch, 'leftover', files));
      const live = { challengeId: 'leftover', identity: 'abababababababab' };
      await engine.up({ ...live, scenario, additional: {} });
      // A write failing once Pulumi made the stack's state (stack.json cannot be written, as on a
      // full disk): the failed up removes the project directory and leaves the state behind.
      const lost = { challengeId: 'leftover', identity: 'cdcdcdcdcdcdcdcd' };
      mkdirSync(
        join(opts.dataDir, 'pulumi', 'stacks', md5('leftover'), lost.identity, 'stack.json'),
        {
          recursive: true,
        },
      );
      await expect(engine.up({ ...lost, scenario, additional: {} })).rejects.toThrow();
      const project = join(opts.dataDir, 'pulumi', 'backend', '.pulumi', 'stacks', 'leftover');
      expect(existsSync(join(project, `${lost.identity}.json`))).toBe(true);
      // Pulumi's temporary files: one a failed write left long ago, one of a write under way.
      const stale = join(project, `${lost.identity}.json.1868f2a.tmp`);
      const fresh = join(project, `${live.identity}.json.1868f2b.tmp`);
      writeFileSync(stale, '');
      utimesSync(stale, new Date(0), new Date(0));
      writeFileSync(fresh, '');

      expect(await engine.reclaimLeftovers()).toBe(2);

      expect(stacksOf(lost.identity)).toEqual([]);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(fresh)).toBe(true);
      rmSync(fresh);
      // The live stack is untouched: it updates and destroys as before.
      await engine.up({ ...live, scenario, additional: { again: '1' } });
      await engine.destroy(live);
      expect(stacksOf(live.identity)).toEqual([]);
    });
  });

  describe('the passphrase', () => {
    it('should reach neither the program nor the dynamic provider when the stack is encrypted with it', async () => {
      // What the program and its dynamic provider see of the CLI's passphrase variables.
      const scenario = asFetched(
        scenarioOf(scratch, 'env-probe', {
          'Pulumi.yaml': 'name: env-probe\nruntime: nodejs\n',
          'index.js': `
            const pulumi = require('@pulumi/pulumi');
            const seen = () => ['PULUMI_CONFIG_PASSPHRASE', 'PULUMI_CONFIG_PASSPHRASE_FILE']
              .map((k) => k + '=' + (process.env[k] ?? '<unset>')).join(',');
            const probe = new pulumi.dynamic.Resource(
              { async create() { return { id: 'probe', outs: { seen: seen() } }; } },
              'probe',
              { seen: undefined },
            );
            exports.connection_info = 'program:' + seen();
            exports.flags = [probe.seen];
          `,
        }),
      );
      const ref = { challengeId: 'env-probe', identity: '8888888888888888' };
      const out = await engine.up({ ...ref, scenario, additional: {} });
      await engine.destroy(ref);
      const unset = 'PULUMI_CONFIG_PASSPHRASE=<unset>,PULUMI_CONFIG_PASSPHRASE_FILE=<unset>';
      const hint =
        'the toolchain must put tools/plugin-env/wrapper.sh in front of the plugins: run `bash scripts/setup.sh`';
      expect(out.connectionInfo, hint).toBe(`program:${unset}`);
      expect(out.flags, hint).toEqual([unset]);
    });
  });

  describe('validate', () => {
    it.each([
      ['no Pulumi.yaml', { 'index.js': '' }, 'no Pulumi.yaml'],
      [
        'an unsupported runtime',
        { 'Pulumi.yaml': 'name: p\nruntime: python\n' },
        'unsupported runtime: python',
      ],
      [
        'a missing binary',
        { 'Pulumi.yaml': 'name: p\nruntime:\n  name: go\n  options:\n    binary: ./nope\n' },
        'binary "./nope"',
      ],
      [
        'a binary outside the scenario',
        {
          'Pulumi.yaml':
            'name: p\nruntime:\n  name: go\n  options:\n    binary: ../../etc/passwd\n',
        },
        'is not a file of the scenario',
      ],
      ['a go scenario without main.go', { 'Pulumi.yaml': 'name: p\nruntime: go\n' }, 'main.go'],
      [
        'a nodejs scenario without entry point',
        { 'Pulumi.yaml': 'name: p\nruntime: nodejs\n' },
        'entry point',
      ],
      [
        'a program that throws',
        {
          'Pulumi.yaml': 'name: p\nruntime: nodejs\n',
          'index.js': "throw new Error('author says no');",
        },
        'author says no',
      ],
    ])('should refuse %s with a message saying what is wrong', async (name, files, problem) => {
      const scenario = asFetched(
        scenarioOf(scratch, `invalid-${name.replace(/\W+/g, '-')}`, files),
      );
      const err = await engine.validate(scenario, {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ScenarioInvalidError);
      expect((err as ScenarioInvalidError).problem).toContain(problem);
    });

    it('should pass and leave no stack when the scenario is valid', async () => {
      await engine.validate(asFetched(scenarioFrom('nodejs-flag-server', scratch)), {});
      expect(readdirSync(join(opts.dataDir, 'pulumi', 'previews'))).toEqual([]);
    });
  });
});

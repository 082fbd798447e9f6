import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PulumiIacEngine,
  type PulumiIacEngineOptions,
} from '../../../src/adapters/iac/pulumi-iac-engine.adapter';
import {
  IacOperationError,
  IacTimeoutError,
  ScenarioInvalidError,
} from '../../../src/shared/errors';
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
      const started = Date.now();
      await expect(slowEngine.up({ ...ref, scenario, additional: {} })).rejects.toBeInstanceOf(
        IacTimeoutError,
      );
      expect(Date.now() - started).toBeLessThan(100_000);
      expect(existsSync(marker)).toBe(false);
      expect(stacksOf('7777777777777777')).toEqual([]);
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

import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { installProgramPreload, nodeOptionsWithPreload, PROGRAM_PRELOAD } from './program-preload';

const run = promisify(execFile);

/**
 * An error whose stack has the frame `@pulumi/pulumi`'s source maps produce for its top-level
 * files, inspected with colours as the SDK does when a program throws. Without the preload, Node
 * (20.19.6 and later, until nodejs/node#64011 is fixed) grows a string without bound on it: with
 * a 64 MB heap the process dies of it instead of printing.
 */
const INSPECT_PULUMI_ERROR = `
const util = require('node:util');
const err = new Error('boom');
err.stack = 'Error: boom\\n    at Stack.initializeAndRegisterOutputs (/srv/node_modules/@pulumi/resource.ts:1598:22)';
process.stdout.write(util.inspect(err, { colors: true }) + '\\n');
process.stdout.write(util.inspect({ nested: err }, false, 2, true));
`;

describe('program preload', () => {
  let dir: string;
  let preload: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cm-preload-'));
    preload = await installProgramPreload(join(dir, 'node'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('should write the preload owner-only when installed', () => {
    expect(readFileSync(preload, 'utf8')).toBe(PROGRAM_PRELOAD);
    expect(statSync(preload).mode & 0o777).toBe(0o600);
  });

  it('should print a thrown Pulumi error without colours when node runs with the preload', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--max-old-space-size=64', '--require', preload, '-e', INSPECT_PULUMI_ERROR],
      { timeout: 120_000 },
    );
    expect(stdout).toContain('Error: boom\n    at Stack.initializeAndRegisterOutputs');
    expect(stdout).toContain('/srv/node_modules/@pulumi/resource.ts:1598:22');
    expect(stdout).toContain('nested: Error: boom');
    expect(stdout).not.toContain('\u001b[');
  });

  it('should give ES modules the same inspect when they import it from node:util', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--require',
        preload,
        '--input-type=module',
        '-e',
        "import util, { inspect } from 'node:util'; process.stdout.write(String(inspect === util.inspect) + ' ' + inspect(1, { colors: true }));",
      ],
      { timeout: 120_000 },
    );
    expect(stdout).toBe('true 1');
  });

  it('should keep inspect.custom and defaultOptions when node runs with the preload', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--require',
        preload,
        '-e',
        "const u = require('node:util'); process.stdout.write([u.inspect.custom === Symbol.for('nodejs.util.inspect.custom'), typeof u.inspect.defaultOptions.depth, u.inspect({ [u.inspect.custom]: () => 'mine' })].join(' '));",
      ],
      { timeout: 120_000 },
    );
    expect(stdout).toBe('true number mine');
  });
});

describe('program preload in the dynamic provider', () => {
  let dir: string;
  let preload: string;
  // Killed after each test, passed or not (a test that timed out never reaches its finally).
  const children: ChildProcess[] = [];
  const node = (args: string[], stdio: StdioOptions): ChildProcess => {
    const child = spawn(process.execPath, ['--require', preload, ...args], { stdio });
    children.push(child);
    return child;
  };
  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cm-preload-provider-'));
    preload = await installProgramPreload(join(dir, 'node'));
    // Stand-ins for @pulumi/pulumi's cmd/dynamic-provider and another script: they run until
    // killed.
    for (const name of ['cmd/dynamic-provider', 'cmd/run']) {
      mkdirSync(join(dir, name), { recursive: true });
      writeFileSync(join(dir, name, 'index.js'), 'setInterval(() => {}, 60_000);');
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('should probe its engine while it answers and exit once its port is closed', async () => {
    let probes = 0;
    let sawProbes: () => void = () => undefined;
    const engine = createServer((c) => {
      c.destroy();
      if (++probes === 2) sawProbes();
    });
    await new Promise<void>((r) => engine.listen(0, '127.0.0.1', r));
    const { port } = engine.address() as AddressInfo;
    const provider = node(
      [join(dir, 'cmd', 'dynamic-provider'), `127.0.0.1:${port}`],
      ['ignore', 'ignore', 'pipe'],
    );
    let stderr = '';
    provider.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => provider.once('exit', (code) => r(code)));
    try {
      // Two probes answered: it stays while the engine is there.
      await new Promise<void>((r) => (sawProbes = r));
      expect(provider.exitCode).toBeNull();
      await new Promise<void>((r) => engine.close(() => r()));
      expect(await exited).toBe(1);
      expect(stderr).toContain(`the Pulumi engine at 127.0.0.1:${port} is gone; exiting`);
    } finally {
      engine.close();
    }
  });

  it('should leave other scripts alone when they get an address as first argument', async () => {
    // Two engines: one for another script (cmd/run), one for a provider started after it. Once
    // the provider has probed its engine twice, the other script has had as long to do so.
    const engines = [0, 0].map(() => {
      const seen = { probes: 0, twice: (): void => undefined };
      const server = createServer((c) => {
        c.destroy();
        if (++seen.probes === 2) seen.twice();
      });
      return { seen, server };
    });
    const ports: number[] = [];
    for (const { server } of engines) {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      ports.push((server.address() as AddressInfo).port);
    }
    try {
      const providerProbedTwice = new Promise<void>((r) => (engines[1]!.seen.twice = r));
      node([join(dir, 'cmd', 'run', 'index.js'), `127.0.0.1:${ports[0]}`], 'ignore');
      node([join(dir, 'cmd', 'dynamic-provider', 'index.js'), `127.0.0.1:${ports[1]}`], 'ignore');
      await providerProbedTwice;
      expect(engines[0]!.seen.probes).toBe(0);
    } finally {
      for (const { server } of engines) server.close();
    }
  });
});

describe('nodeOptionsWithPreload', () => {
  it('should append the preload after the operator options when NODE_OPTIONS is set', () => {
    expect(
      nodeOptionsWithPreload(' --max-old-space-size=512 ', '/c/node/program-preload.cjs'),
    ).toBe('--max-old-space-size=512 --require "/c/node/program-preload.cjs"');
  });

  it('should give only the preload when NODE_OPTIONS is unset or empty', () => {
    expect(nodeOptionsWithPreload(undefined, '/c/p.cjs')).toBe('--require "/c/p.cjs"');
    expect(nodeOptionsWithPreload('', '/c/p.cjs')).toBe('--require "/c/p.cjs"');
  });

  it('should escape quotes and backslashes when the path holds them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm preload "q" \\ '));
    try {
      const path = await installProgramPreload(dir);
      const { stdout } = await run(
        process.execPath,
        ['-e', "process.stdout.write(String(require('node:util').inspect(1, { colors: true })))"],
        { env: { ...process.env, NODE_OPTIONS: nodeOptionsWithPreload(undefined, path) } },
      );
      expect(stdout).toBe('1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

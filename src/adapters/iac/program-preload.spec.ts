import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

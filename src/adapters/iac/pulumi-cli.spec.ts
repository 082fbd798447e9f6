import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  isFailure,
  outputsOfEvents,
  PulumiCliError,
  runPulumi,
  runWithEvents,
  SECRET_SIG,
  writeStackConfig,
  type PulumiEvent,
} from './pulumi-cli';

const STACK = 'pulumi:pulumi:Stack';

describe('pulumi CLI runner', () => {
  let dir: string;
  /** A stand-in `pulumi`: runs the shell text given in $SCRIPT with the arguments it got. */
  let binary: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cm-pulumi-cli-'));
    binary = join(dir, 'pulumi');
    writeFileSync(binary, '#!/bin/sh\neval "$SCRIPT"\n');
    chmodSync(binary, 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (script: string, args: string[] = [], signal?: AbortSignal): Promise<string> =>
    runPulumi({ binary, args, cwd: dir, env: { PATH: '/usr/bin:/bin', SCRIPT: script }, signal });

  it('should run non-interactive, marked as automated, with its own directory first on PATH', async () => {
    const out = await run('echo "$* $PULUMI_AUTOMATION_API $PATH"', ['up', '--yes']);
    expect(out).toBe(`up --yes --non-interactive true ${dir}:/usr/bin:/bin`);
  });

  it.each([
    ["error: no stack named 'organization/p/s' found", 'stack-not-found'],
    ["error: stack 'organization/p/s' already exists", 'stack-exists'],
    ['error: the stack is currently locked by 1 lock(s)', 'locked'],
    ['error: [409] Conflict: Another update is currently in progress.', 'locked'],
    ['error: update failed', 'failed'],
  ])('should classify the failure "%s" as %s', async (text, kind) => {
    const err: unknown = await run(`echo out; echo "${text}" >&2; exit 3`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PulumiCliError);
    expect(isFailure(err, kind as Parameters<typeof isFailure>[1])).toBe(true);
    expect((err as PulumiCliError).code).toBe(3);
    expect((err as Error).message).toContain('stdout: out');
  });

  it('should send SIGINT (the graceful cancel) when aborted', async () => {
    const controller = new AbortController();
    const done = run(
      `trap 'echo cancelled >&2; exit 7' INT; echo started > ${dir}/started; while :; do sleep 0.05; done`,
      [],
      controller.signal,
    ).catch((e: unknown) => e);
    while (!statSync(join(dir, 'started'), { throwIfNoEntry: false }))
      await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    const err = await done;
    expect((err as PulumiCliError).code).toBe(7);
    expect((err as Error).message).toContain('cancelled');
  });

  it('should hand over the event log, also of a failed run, and remove it', async () => {
    let events: PulumiEvent[] = [];
    const script =
      'while [ "$1" != --event-log ]; do shift; done; log=$2; echo "$log" > ' +
      join(dir, 'log-path') +
      '; printf \'{"diagnosticEvent":{"severity":"error","message":"bad"}}\\n{"cut\' > "$log"; exit 1';
    const err: unknown = await runWithEvents(
      { binary, args: ['up'], cwd: dir, env: { PATH: '/usr/bin:/bin', SCRIPT: script } },
      (e) => {
        events = e;
      },
    ).catch((e: unknown) => e);
    const log = readFileSync(join(dir, 'log-path'), 'utf8').trim();
    expect(isFailure(err, 'failed')).toBe(true);
    expect(events).toEqual([{ diagnosticEvent: { severity: 'error', message: 'bad' } }]);
    expect(statSync(log, { throwIfNoEntry: false })).toBeUndefined();
  });
});

describe('outputs of events', () => {
  const outputsEvent = (outputs: Record<string, unknown>): PulumiEvent => ({
    resOutputsEvent: { metadata: { type: STACK, new: { outputs } } },
  });

  it('should take the stack resource outputs of the update', () => {
    expect(
      outputsOfEvents([
        { diagnosticEvent: { severity: 'info', message: 'x' } },
        { resOutputsEvent: { metadata: { type: 'pulumi-nodejs:dynamic:Resource', new: {} } } },
        outputsEvent({ connection_info: 'a', flags: ['f'] }),
      ]),
    ).toEqual({ connection_info: 'a', flags: ['f'] });
  });

  it('should give nothing when an output is a secret (masked in events) or none came', () => {
    const secret = { [SECRET_SIG]: '1b47061264138c4ac30d75fd1eb44270', ciphertext: '[secret]' };
    expect(outputsOfEvents([outputsEvent({ connection_info: 'a', flags: [secret] })])).toBe(
      undefined,
    );
    expect(outputsOfEvents([])).toBe(undefined);
  });
});

describe('stack config file', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cm-stack-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('should replace the config and keep the salt, owner-only', async () => {
    const file = join(dir, 'Pulumi.s1.yaml');
    writeFileSync(
      file,
      "encryptionsalt: v1:abc==\nconfig:\n  p:identity: old\n  p:other: '{}'\nsecretsprovider: passphrase",
    );
    const additional = JSON.stringify({ a: 'x"y\\z: #1', u: 'é\u2028\u{1f600}\u007f' });
    await writeStackConfig(dir, 's1', { 'p:identity': 's1', 'p:additional': additional });
    expect(parse(readFileSync(file, 'utf8'))).toEqual({
      encryptionsalt: 'v1:abc==',
      secretsprovider: 'passphrase',
      config: { 'p:identity': 's1', 'p:additional': additional },
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('should write a file of its own when there is none', async () => {
    await writeStackConfig(dir, 's2', { 'p:identity': '0123' });
    expect(parse(readFileSync(join(dir, 'Pulumi.s2.yaml'), 'utf8'))).toEqual({
      config: { 'p:identity': '0123' },
    });
  });
});

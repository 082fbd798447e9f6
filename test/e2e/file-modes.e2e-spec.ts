import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jsonInit } from '../support/api-app';
import { orasPush } from '../support/oras';
import { buildServiceIfStale, startReplica, type Replica } from '../support/replica-process';
import { EXAMPLES } from '../support/scenarios';
import { useToolchainPath } from '../support/toolchain';

/**
 * Flags live on disk (instance records, Pulumi checkpoints, stack configs): everything under DIR
 * and CACHE must be owner-only, whatever wrote it (the service, the Pulumi CLI and its plugins,
 * an older version), after a real lifecycle of the built service (`node dist/main.js`).
 */

/** Entries under `root` that group or others may read, write or enter (links skipped). */
function openEntries(root: string): string[] {
  const open: string[] = [];
  const walk = (path: string): void => {
    const info = lstatSync(path);
    if (info.isSymbolicLink()) return;
    if ((info.mode & 0o077) !== 0) {
      open.push(`${relative(root, path) || '.'} ${(info.mode & 0o777).toString(8)}`);
    }
    if (info.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
  };
  walk(root);
  return open;
}

/** How many files and directories lie under `root` (links skipped). */
function countEntries(root: string): number {
  const info = lstatSync(root);
  if (info.isSymbolicLink()) return 0;
  if (!info.isDirectory()) return 1;
  return 1 + readdirSync(root).reduce((n, e) => n + countEntries(join(root, e)), 0);
}

describe('files under DIR and CACHE (node dist/main.js)', () => {
  let scratch: string;
  let service: Replica | undefined;

  beforeAll(async () => {
    useToolchainPath();
    scratch = mkdtempSync(join(tmpdir(), 'cm-file-modes-'));
    await buildServiceIfStale();
  });
  afterAll(async () => {
    // The instance's flag server outlives the service: only deleting the instance stops it (the
    // test does; this is for a test that failed half-way).
    if (service?.running()) {
      await fetch(`${service.base}/api/v1/challenge/modes`, { method: 'DELETE' }).catch(
        () => undefined,
      );
    }
    await service?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('should be owner-only after a create, a deletion and a restart, including what existed before', async () => {
    const dir = join(scratch, 'data');
    const cache = join(scratch, 'cache');
    // What an older version left: world-readable records.
    mkdirSync(join(dir, 'chall', 'old'), { recursive: true, mode: 0o755 });
    chmodSync(join(dir, 'chall', 'old'), 0o755);
    writeFileSync(join(dir, 'chall', 'old', 'leftover'), 'CTF{old}', { mode: 0o644 });
    chmodSync(join(dir, 'chall', 'old', 'leftover'), 0o644);
    chmodSync(dir, 0o755);
    const scenario = await orasPush(
      inject('registry'),
      'file-modes/flag-server:v1',
      join(EXAMPLES, 'nodejs-flag-server'),
    );
    service = await startReplica({ name: 'service', dir, cache, env: { JANITOR_TICKER: '1h' } });
    const call = async (method: string, path: string, body?: unknown): Promise<void> => {
      const res = await fetch(`${service!.base}${path}`, jsonInit(method, body));
      expect(res.status, `${method} ${path}: ${await res.text()}`).toBe(200);
    };

    await call('POST', '/api/v1/challenge', { id: 'modes', scenario, timeout: '600s' });
    await call('POST', '/api/v1/instance', { challengeId: 'modes', sourceId: 'team' });
    // The instance is up: records, Pulumi's checkpoint, history and config, pulled scenario.
    expect(countEntries(dir)).toBeGreaterThan(20);
    expect(countEntries(cache)).toBeGreaterThan(5);
    expect(openEntries(dir)).toEqual([]);
    expect(openEntries(cache)).toEqual([]);

    await call('DELETE', '/api/v1/instance/modes/team');
    await service.stop();
    service = await startReplica({ name: 'service', dir, cache, env: { JANITOR_TICKER: '1h' } });
    await call('POST', '/api/v1/instance', { challengeId: 'modes', sourceId: 'team' });
    expect(openEntries(dir)).toEqual([]);
    expect(openEntries(cache)).toEqual([]);

    // Deleting the challenge deletes its instance, whose flag server would otherwise outlive
    // the test.
    await call('DELETE', '/api/v1/challenge/modes');
    expect(openEntries(dir)).toEqual([]);
  });
});

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { RUN_MARKER, leftoversOfThisRun, ticksNow } from '../../support/leftover-processes';
import { startEtcd, startRegistry, type RunningService } from '../../support/services';
import { assertToolchain, toolVersion, useToolchainPath } from '../../support/toolchain';

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the test etcd. */
    etcdEndpoint: string;
    /** host:port of the test registry (plain HTTP, anonymous). */
    registry: string;
  }
}

/**
 * Starts etcd and the registry on free 127.0.0.1 ports with temporary data, unless
 * CM_TEST_ETCD_ENDPOINT / CM_TEST_REGISTRY point at running ones; stops what it started. Then
 * checks that no process the run started outlives it (each file checks its own as well, see
 * no-leftover-processes.ts): what is left is killed and fails the run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  useToolchainPath();
  assertToolchain();
  console.log(
    `[e2e] ${toolVersion('pulumi')} | ${toolVersion('oras')} | ${toolVersion('etcd', ['--version'])} | ${toolVersion('docker-registry', ['--version'])}`,
  );
  const started: RunningService[] = [];
  const etcd =
    process.env.CM_TEST_ETCD_ENDPOINT ?? started[started.push(await startEtcd()) - 1]!.endpoint;
  const registry =
    process.env.CM_TEST_REGISTRY ?? started[started.push(await startRegistry()) - 1]!.endpoint;
  // Set once etcd and the registry run: they are the set-up's, stopped below, not the tests'.
  const run = randomBytes(6).toString('hex');
  const since = ticksNow();
  process.env[RUN_MARKER] = run;
  // A temporary directory of this run's own, inherited by the test files and everything they
  // start: the scratch directories `cm-…` a leftover check looks in are this run's alone, so two
  // runs on one machine (another checkout's suite, a CI run) never take each other's processes
  // for leftovers (its name does not start with `cm-`, which older checks looked for directly
  // under the system temp dir).
  const scratchRoot = mkdtempSync(join(tmpdir(), 'chall-manager-e2e-'));
  process.env.TMPDIR = scratchRoot;
  project.provide('etcdEndpoint', etcd);
  project.provide('registry', registry);
  console.log(`[e2e] etcd at ${etcd}, registry at ${registry}`);
  return async () => {
    await Promise.all(started.map((s) => s.stop()));
    const left = await leftoversOfThisRun(since);
    rmSync(scratchRoot, { recursive: true, force: true });
    if (left !== '') throw new Error(`processes the e2e run left running (killed):\n${left}`);
  };
}

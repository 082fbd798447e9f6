// The Pulumi engine adapter against the bare Pulumi CLI, side by side in the same run: a fresh
// creation (the adapter's `up` of a new identity vs `pulumi stack init` + `pulumi up` of the same
// program), a deletion (the adapter's `destroy` vs `pulumi destroy` + `pulumi stack rm`) and a
// validation (the adapter's preview of a new challenge). A `pulumi` wrapper first on PATH counts
// the CLI launches of each operation. Rounds alternate adapter and floor so drift hits both.
// Run: npm run bench -- iac
import { Logger } from '@nestjs/common';
import { execFile } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PulumiIacEngine } from '../src/adapters/iac/pulumi-iac-engine.adapter';
import type { FetchedScenario } from '../src/shared/ports';
import { outputsOnlyScenario } from '../test/support/api-scenarios';
import { scenarioOf } from '../test/support/scenarios';
import { useToolchainPath, which } from '../test/support/toolchain';
import { percentile, row, timed } from './stats';

const execFileAsync = promisify(execFile);
const ROUNDS = 5;
const PASSPHRASE = 'bench';

const median = (samples: number[]): number =>
  percentile(
    [...samples].sort((a, b) => a - b),
    50,
  );

/** A `pulumi` first on PATH that appends its sub-command to `log`, then runs the real CLI. */
function countingWrapper(scratch: string): { log: string; launches: () => string[] } {
  const real = which('pulumi');
  if (real === undefined) throw new Error('no pulumi on PATH');
  const bin = join(scratch, 'wrapper');
  const log = join(scratch, 'launches.log');
  mkdirSync(bin);
  writeFileSync(log, '');
  writeFileSync(
    join(bin, 'pulumi'),
    `#!/bin/sh\nfor a in "$@"; do case "$a" in -*) ;; *) printf '%s ' "$a"; esac; [ "$a" = stack ] || break; done >> ${JSON.stringify(log)}\necho >> ${JSON.stringify(log)}\nexec ${JSON.stringify(real)} "$@"\n`,
  );
  chmodSync(join(bin, 'pulumi'), 0o755);
  process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
  let seen = 0;
  return {
    log,
    launches: () => {
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const fresh = lines.slice(seen).map((l) => l.trim());
      seen = lines.length;
      return fresh;
    },
  };
}

async function main(): Promise<void> {
  useToolchainPath();
  Logger.overrideLogger(['error']);
  const scratch = mkdtempSync(join(tmpdir(), 'cm-bench-iac-'));
  const counter = countingWrapper(scratch);
  const nodeModules = dirname(dirname(dirname(require.resolve('@pulumi/pulumi/package.json'))));
  const scenario: FetchedScenario = {
    reference: 'bench/outputs-only:v1',
    digest: `sha256:${'0'.repeat(64)}`,
    directory: scenarioOf(scratch, 'outputs-only', outputsOnlyScenario('bench')),
  };
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  const engine = new PulumiIacEngine({
    dataDir: join(scratch, 'adapter-data'),
    cacheDir: join(scratch, 'adapter-cache'),
    passphrase: PASSPHRASE,
    operationTimeoutMs: 600_000,
    cancelGraceMs: 10_000,
    compileTimeoutMs: 600_000,
    programEnv: env,
    nodeModulesDir: nodeModules,
  });

  // The floor: the same program in a project directory of its own, same backend kind.
  const floorDir = join(scratch, 'floor');
  const floorBackend = join(scratch, 'floor-backend');
  cpSync(scenario.directory, floorDir, { recursive: true });
  mkdirSync(floorBackend);
  const floorEnv = {
    ...process.env,
    ...env,
    PULUMI_BACKEND_URL: `file://${floorBackend}`,
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    NODE_PATH: nodeModules,
  };
  const pulumi = async (...args: string[]): Promise<void> => {
    await execFileAsync('pulumi', [...args, '--non-interactive'], {
      cwd: floorDir,
      env: floorEnv,
      maxBuffer: 64 * 1024 * 1024,
    });
  };
  const floorUp = async (identity: string): Promise<void> => {
    const stack = `organization/outputs-only/${identity}`;
    await pulumi('stack', 'init', stack);
    // The config the adapter gives every stack, written as a file (no launch), as it does.
    appendFileSync(
      join(floorDir, `Pulumi.${identity}.yaml`),
      `\nconfig:\n  outputs-only:identity: "${identity}"\n  outputs-only:additional: "{}"\n`,
    );
    await pulumi('up', '--yes', '--skip-preview', '--stack', stack);
  };
  const floorDestroy = async (identity: string): Promise<void> => {
    const stack = `organization/outputs-only/${identity}`;
    await pulumi('destroy', '--yes', '--skip-preview', '--stack', stack);
    await pulumi('stack', 'rm', '--yes', '--stack', stack);
  };
  const ref = (i: number): { challengeId: string; identity: string } => ({
    challengeId: 'bench',
    identity: `00000000000000${i.toString(16).padStart(2, '0')}`,
  });

  try {
    // Warm-up (first `pulumi version`, prepared scenario, caches): not measured.
    await engine.up({ ...ref(255), scenario, additional: {} });
    await engine.destroy(ref(255));
    await floorUp('00000000000000ff');
    await floorDestroy('00000000000000ff');
    counter.launches();

    const t = { up: [] as number[], floorUp: [] as number[], down: [] as number[] };
    const f = { down: [] as number[] };
    const launches: Record<string, string[]> = {};
    for (let i = 0; i < ROUNDS; i++) {
      t.up.push((await timed(() => engine.up({ ...ref(i), scenario, additional: {} })))[0]);
      launches.up = counter.launches();
      t.floorUp.push((await timed(() => floorUp(ref(i).identity)))[0]);
      launches.floorUp = counter.launches();
    }
    for (let i = 0; i < ROUNDS; i++) {
      t.down.push((await timed(() => engine.destroy(ref(i))))[0]);
      launches.down = counter.launches();
      f.down.push((await timed(() => floorDestroy(ref(i).identity)))[0]);
      launches.floorDown = counter.launches();
    }
    const [validate] = await timed(() => engine.validate(scenario, {}));
    launches.validate = counter.launches();

    console.log(`iac benchmark (tiny outputs-only scenario, ${new Date().toISOString()})`);
    const line = (label: string, ms: number[], floorMs: number[]): void =>
      row(
        label,
        `adapter p50=${median(ms).toFixed(0)} ms, floor p50=${median(floorMs).toFixed(0)} ms, ratio ${(median(ms) / median(floorMs)).toFixed(2)} (n=${ms.length} each)`,
      );
    line('fresh creation (up of a new identity)', t.up, t.floorUp);
    line('deletion (destroy)', t.down, f.down);
    row('validation (preview of a new challenge)', `adapter ${validate.toFixed(0)} ms`);
    const count = (label: string, l: string[] | undefined): void =>
      row(`  CLI launches, ${label}`, `${l?.length ?? 0}: ${(l ?? []).join(', ')}`);
    count('adapter creation', launches.up);
    count('floor creation', launches.floorUp);
    count('adapter deletion', launches.down);
    count('floor deletion', launches.floorDown);
    count('adapter validation', launches.validate);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// Scenario benchmark: for each example scenario, pull time (cold, then warm from the cache) with
// the service's OCI client from a real registry, then `pulumi up` and `pulumi destroy` times with
// the service's Pulumi adapter (first deployment, then a second one on a warm cache).
// Run: npm run bench -- scenarios
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PulumiIacEngine } from '../src/adapters/iac/pulumi-iac-engine.adapter';
import { HttpOciRegistry } from '../src/adapters/oci/http-oci-registry.adapter';
import {
  DEFAULT_OCI_LIMITS,
  DEFAULT_OCI_REQUEST_TIMEOUT_MS,
} from '../src/adapters/oci/http-oci-registry.options';
import { startRegistry } from '../test/support/services';
// Run from the repository root (bench/run.sh does).
const EXAMPLES = join(process.cwd(), 'examples');
import { useToolchainPath } from '../test/support/toolchain';
import { row, timed } from './stats';

async function main(): Promise<void> {
  useToolchainPath();
  const registry = await startRegistry();
  const scratch = mkdtempSync(join(tmpdir(), 'cm-bench-'));
  const nodeModules = dirname(dirname(dirname(require.resolve('@pulumi/pulumi/package.json'))));
  try {
    const pusher = new HttpOciRegistry({
      cacheDir: join(scratch, 'pusher'),
      insecure: true,
      limits: DEFAULT_OCI_LIMITS,
      requestTimeoutMs: DEFAULT_OCI_REQUEST_TIMEOUT_MS,
    });
    console.log(`scenario benchmark (registry ${registry.endpoint}, ${new Date().toISOString()})`);
    for (const example of ['nodejs-flag-server', 'go-minimal']) {
      const ref = `${registry.endpoint}/bench/${example}:v1`;
      await pusher.pushScenario(join(EXAMPLES, example), ref);
      const cache = join(scratch, `cache-${example}`);
      const oci = new HttpOciRegistry({
        cacheDir: cache,
        insecure: true,
        limits: DEFAULT_OCI_LIMITS,
        requestTimeoutMs: DEFAULT_OCI_REQUEST_TIMEOUT_MS,
      });
      const [cold, scenario] = await timed(() => oci.fetchScenario(ref));
      const [warm] = await timed(() => oci.fetchScenario(ref));
      const engine = new PulumiIacEngine({
        dataDir: join(scratch, `data-${example}`),
        cacheDir: cache,
        passphrase: 'bench',
        operationTimeoutMs: 600_000,
        cancelGraceMs: 10_000,
        compileTimeoutMs: 600_000,
        programEnv: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
        nodeModulesDir: nodeModules,
      });
      const a = { challengeId: 'bench', identity: '0000000000000001' };
      const b = { challengeId: 'bench', identity: '0000000000000002' };
      const [upFirst] = await timed(() => engine.up({ ...a, scenario, additional: {} }));
      const [upSecond] = await timed(() => engine.up({ ...b, scenario, additional: {} }));
      const [updateNoop] = await timed(() => engine.up({ ...b, scenario, additional: {} }));
      const [destroyA] = await timed(() => engine.destroy(a));
      const [destroyB] = await timed(() => engine.destroy(b));
      row(`${example}: pull cold`, `${cold.toFixed(1)} ms`);
      row(`${example}: pull warm (cached digest)`, `${warm.toFixed(1)} ms`);
      row(`${example}: up, first (prepares/compiles)`, `${upFirst.toFixed(0)} ms`);
      row(`${example}: up, second stack`, `${upSecond.toFixed(0)} ms`);
      row(`${example}: up again, nothing changed`, `${updateNoop.toFixed(0)} ms`);
      row(`${example}: destroy`, `${destroyA.toFixed(0)} ms, ${destroyB.toFixed(0)} ms`);
    }
  } finally {
    await registry.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

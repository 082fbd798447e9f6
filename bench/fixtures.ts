// Set-up shared by the benchmarks.
import { join } from 'node:path';
import { HttpOciRegistry } from '../src/adapters/oci/http-oci-registry.adapter';
import {
  DEFAULT_OCI_LIMITS,
  DEFAULT_OCI_REQUEST_TIMEOUT_MS,
} from '../src/adapters/oci/http-oci-registry.options';
import { outputsOnlyScenario } from '../test/support/api-scenarios';
import { scenarioOf } from '../test/support/scenarios';

/**
 * Pushes the tiny outputs-only scenario (no resource, outputs from the identity) to the
 * registry at `endpoint` as `bench/outputs-only:v1`, and returns its reference.
 */
export async function pushOutputsOnly(
  endpoint: string,
  scratch: string,
  variant: string,
): Promise<string> {
  const ref = `${endpoint}/bench/outputs-only:v1`;
  await new HttpOciRegistry({
    cacheDir: join(scratch, 'push'),
    insecure: true,
    limits: DEFAULT_OCI_LIMITS,
    requestTimeoutMs: DEFAULT_OCI_REQUEST_TIMEOUT_MS,
  }).pushScenario(scenarioOf(scratch, 'outputs-only', outputsOnlyScenario(variant)), ref);
  return ref;
}

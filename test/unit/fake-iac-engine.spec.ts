import { iacEngineContract } from '../contract/iac-engine.contract';
import { FakeIacEngine } from '../support/fakes/fake-iac-engine';
import { InMemoryOciRegistry } from '../support/fakes/in-memory-oci-registry';

iacEngineContract('FakeIacEngine', async () => {
  const oci = new InMemoryOciRegistry();
  const reference = 'registry.local/contract/scenario:v1';
  oci.push(reference);
  const scenario = await oci.fetchScenario(reference);
  const engine = new FakeIacEngine();
  return {
    engine,
    scenario,
    failingUp: () => {
      engine.failNextUp();
      return scenario;
    },
    // The fake deploys nothing outside its own map of stacks.
    leftOf: () => [],
    cleanup: () => Promise.resolve(),
  };
});

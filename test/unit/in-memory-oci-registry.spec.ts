import { createHash } from 'node:crypto';
import { ociRegistryContract } from '../contract/oci-registry.contract';
import { InMemoryOciRegistry } from '../support/fakes/in-memory-oci-registry';

ociRegistryContract('InMemoryOciRegistry', () => {
  const registry = new InMemoryOciRegistry();
  return Promise.resolve({
    registry,
    host: 'registry.local',
    // A digest of the files, as a manifest's is of its layers.
    publish: (reference, files) =>
      Promise.resolve(
        registry.push(
          reference,
          `sha256:${createHash('sha256').update(JSON.stringify(files)).digest('hex')}`,
          files,
        ),
      ),
    cleanup: () => Promise.resolve(),
  });
});

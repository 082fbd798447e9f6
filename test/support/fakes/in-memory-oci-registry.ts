import { createHash } from 'node:crypto';
import { parseOciReference } from '../../../src/adapters/oci/oci-reference';
import { OciReferenceNotFoundError } from '../../../src/shared/errors';
import { OciRegistry, type FetchedScenario } from '../../../src/shared/ports/oci-registry.port';
import { Gate } from './fake-iac-engine';

/** A well-formed digest derived from `seed`: `aDigest('v2')` is stable across runs. */
export function aDigest(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

/**
 * OciRegistry double: a map of reference → digest that tests change with `push` (a re-pushed tag
 * is one call). References are checked with the real parser, so what is malformed here is
 * malformed in production. Nothing is fetched: scenarios point at a directory that does not exist
 * (the FakeIacEngine never reads it).
 */
export class InMemoryOciRegistry implements OciRegistry {
  private readonly digests = new Map<string, string>();
  /** Network-touching calls (`resolve`, `fetchScenario`), in order. */
  readonly calls: {
    op: 'resolve' | 'fetchScenario';
    reference: string;
    recordedDigest?: string;
  }[] = [];
  private readonly fetchGate = new Gate();

  /** Holds every `fetchScenario` (a slow pull) until `releaseFetches`. */
  holdFetches(): void {
    this.fetchGate.hold();
  }

  releaseFetches(): void {
    this.fetchGate.release();
  }

  /** Resolves once `count` fetches are held. */
  whenFetchesHeld(count = 1): Promise<void> {
    return this.fetchGate.whenHeld(count);
  }

  /** Publishes `reference` with `digest` (default: derived from the reference), replacing any. */
  push(reference: string, digest: string = aDigest(reference)): string {
    parseOciReference(reference);
    this.digests.set(reference, digest);
    return digest;
  }

  digestOf(reference: string): string | undefined {
    return this.digests.get(reference);
  }

  checkReference(reference: string): void {
    parseOciReference(reference);
  }

  resolve(reference: string, _signal?: AbortSignal): Promise<string> {
    this.calls.push({ op: 'resolve', reference });
    return this.lookUp(reference);
  }

  async fetchScenario(
    reference: string,
    _signal?: AbortSignal,
    recordedDigest?: string,
  ): Promise<FetchedScenario> {
    this.calls.push({
      op: 'fetchScenario',
      reference,
      ...(recordedDigest === undefined ? {} : { recordedDigest }),
    });
    await this.fetchGate.pass();
    return { reference, digest: await this.lookUp(reference), directory: '/nonexistent' };
  }

  private lookUp(reference: string): Promise<string> {
    return new Promise((resolve) => {
      // A throw in the executor rejects the promise.
      parseOciReference(reference);
      const digest = this.digests.get(reference);
      if (digest === undefined) throw new OciReferenceNotFoundError(reference);
      resolve(digest);
    });
  }
}

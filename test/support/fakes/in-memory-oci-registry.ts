import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseOciReference, type OciReference } from '../../../src/adapters/oci/oci-reference';
import { OciReferenceNotFoundError } from '../../../src/shared/errors';
import { OciRegistry, type FetchedScenario } from '../../../src/shared/ports/oci-registry.port';
import { Gate } from './fake-iac-engine';

/** A well-formed digest derived from `seed`: `aDigest('v2')` is stable across runs. */
export function aDigest(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

/** What a scenario pushed without files holds: just enough to be one. */
export const FAKE_SCENARIO_FILES: Readonly<Record<string, string>> = {
  'Pulumi.yaml': 'name: fake-scenario\nruntime: nodejs\n',
};

/** Where this process's fakes unpack what they serve; removed when the process exits. */
let unpackRoot: string | undefined;
function unpackDirOf(digest: string): string {
  if (unpackRoot === undefined) {
    const root = mkdtempSync(join(tmpdir(), 'cm-fake-oci-'));
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
    unpackRoot = root;
  }
  return join(unpackRoot, digest.replace(':', '_'));
}

/** `registry/repository:tag`, the name a registry knows a tag by (`latest` when none is given). */
function tagKey(ref: OciReference): string {
  return `${ref.registry}/${ref.repository}:${ref.tag}`;
}

/**
 * OciRegistry double: tags of repositories that tests move with `push` (a re-pushed tag is one
 * call), each naming a digest and the files it holds. References are checked with the real
 * parser, and resolved as a registry does: `repo` is `repo:latest`, and `repo@<digest>` finds
 * any manifest ever pushed to that repository, whatever its tags say now. `fetchScenario`
 * unpacks the files in a directory of its own (one per digest, shared by the process's fakes)
 * and, as the real adapter, rejects with the abort reason once `signal` is aborted.
 */
export class InMemoryOciRegistry implements OciRegistry {
  /** `registry/repository:tag` → digest. */
  private readonly tags = new Map<string, string>();
  /** `registry/repository` → every digest pushed there, with its files. */
  private readonly manifests = new Map<string, Map<string, Readonly<Record<string, string>>>>();
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

  /**
   * Publishes `reference` with `digest` (default: derived from the reference) holding `files`
   * (default: a bare scenario), replacing what its tag named. Returns the digest.
   */
  push(
    reference: string,
    digest: string = aDigest(reference),
    files: Readonly<Record<string, string>> = FAKE_SCENARIO_FILES,
  ): string {
    const ref = parseOciReference(reference);
    const repository = `${ref.registry}/${ref.repository}`;
    const manifests =
      this.manifests.get(repository) ?? new Map<string, Readonly<Record<string, string>>>();
    manifests.set(digest, { ...files });
    this.manifests.set(repository, manifests);
    if (ref.digest === undefined) this.tags.set(tagKey(ref), digest);
    return digest;
  }

  /** The digest `reference` names now, if any. */
  digestOf(reference: string): string | undefined {
    const ref = parseOciReference(reference);
    if (this.filesOf(ref) === undefined) return undefined;
    return ref.digest ?? this.tags.get(tagKey(ref));
  }

  checkReference(reference: string): void {
    parseOciReference(reference);
  }

  resolve(reference: string, signal?: AbortSignal): Promise<string> {
    this.calls.push({ op: 'resolve', reference });
    return this.lookUp(reference, signal).then(({ digest }) => digest);
  }

  async fetchScenario(
    reference: string,
    signal?: AbortSignal,
    recordedDigest?: string,
  ): Promise<FetchedScenario> {
    this.calls.push({
      op: 'fetchScenario',
      reference,
      ...(recordedDigest === undefined ? {} : { recordedDigest }),
    });
    await this.fetchGate.pass();
    const { digest, files } = await this.lookUp(reference, signal);
    const directory = unpackDirOf(digest);
    if (!existsSync(directory)) {
      const temp = `${directory}.tmp-${process.pid}`;
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(dirname(join(temp, path)), { recursive: true });
        writeFileSync(join(temp, path), content);
      }
      renameSync(temp, directory);
    }
    return { reference, digest, directory };
  }

  private filesOf(ref: OciReference): Readonly<Record<string, string>> | undefined {
    const manifests = this.manifests.get(`${ref.registry}/${ref.repository}`);
    const digest = ref.digest ?? this.tags.get(tagKey(ref));
    return digest === undefined ? undefined : manifests?.get(digest);
  }

  private lookUp(
    reference: string,
    signal?: AbortSignal,
  ): Promise<{ digest: string; files: Readonly<Record<string, string>> }> {
    return new Promise((resolve) => {
      // A throw in the executor rejects the promise: the port's methods never throw at once.
      signal?.throwIfAborted();
      const ref = parseOciReference(reference);
      const files = this.filesOf(ref);
      const digest = ref.digest ?? this.tags.get(tagKey(ref));
      if (files === undefined || digest === undefined) {
        throw new OciReferenceNotFoundError(reference);
      }
      resolve({ digest, files });
    });
  }
}

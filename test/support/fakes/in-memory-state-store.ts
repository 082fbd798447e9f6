import type { Challenge } from '../../../src/shared/domain/challenge';
import { IDENTITY_PATTERN, type Instance } from '../../../src/shared/domain/instance';
import {
  StateStore,
  type ClaimSave,
  type CreationMark,
  type PoolState,
} from '../../../src/shared/ports/state-store.port';

/**
 * Stateful StateStore double with FsStateStore's behaviour (same contract suite): records are
 * deep-copied in and out, an absent `sourceId` never removes a claim, deleting a challenge
 * deletes its instances, bad identities throw. Single-threaded JS makes `claim` atomic.
 */
export class InMemoryStateStore implements StateStore {
  private readonly challenges = new Map<string, Challenge>();
  /** challengeId → identity → instance record (without `sourceId`). */
  private readonly instances = new Map<string, Map<string, Instance>>();
  /** challengeId → identity → sourceId; separate, as upstream's claim file. */
  private readonly claims = new Map<string, Map<string, string>>();
  /** `challengeId/identity` → the Pulumi deployment an upstream record carries (see seedUpstream). */
  private readonly upstream = new Map<string, unknown>();
  /** `challengeId/sourceId` of the creations marked (see beginCreation). */
  private readonly creating = new Set<string>();

  beginCreation(challengeId: string, sourceId: string): Promise<CreationMark> {
    const key = `${challengeId}/${sourceId}`;
    this.creating.add(key);
    return Promise.resolve({
      end: () => {
        this.creating.delete(key);
        return Promise.resolve();
      },
    });
  }

  creationUnderway(challengeId: string, sourceId: string): Promise<boolean> {
    return Promise.resolve(this.creating.has(`${challengeId}/${sourceId}`));
  }

  loadChallenge(id: string): Promise<Challenge | undefined> {
    const c = this.challenges.get(id);
    return Promise.resolve(c === undefined ? undefined : structuredClone(c));
  }

  saveChallenge(challenge: Challenge): Promise<void> {
    this.challenges.set(challenge.id, withoutUndefined(structuredClone(challenge)));
    return Promise.resolve();
  }

  deleteChallenge(id: string): Promise<void> {
    this.challenges.delete(id);
    this.instances.delete(id);
    this.claims.delete(id);
    return Promise.resolve();
  }

  listChallenges(): Promise<Challenge[]> {
    return Promise.resolve([...this.challenges.values()].map((c) => structuredClone(c)));
  }

  loadInstance(challengeId: string, identity: string): Promise<Instance | undefined> {
    return this.guard(identity, () => this.read(challengeId, identity));
  }

  saveInstance(instance: Instance): Promise<void> {
    return this.guard(instance.identity, () => this.write(instance));
  }

  private write(instance: Instance): void {
    const { sourceId, ...record } = withoutUndefined(structuredClone(instance));
    this.bucket(this.instances, instance.challengeId).set(instance.identity, record);
    if (sourceId !== undefined) {
      this.bucket(this.claims, instance.challengeId).set(instance.identity, sourceId);
    }
  }

  deleteInstance(challengeId: string, identity: string): Promise<void> {
    return this.guard(identity, () => {
      this.instances.get(challengeId)?.delete(identity);
      this.claims.get(challengeId)?.delete(identity);
      this.upstream.delete(`${challengeId}/${identity}`);
    });
  }

  listInstances(challengeId: string): Promise<Instance[]> {
    return Promise.resolve(this.instancesOf(challengeId));
  }

  listInstancesOf(challengeIds: readonly string[]): Promise<Instance[][]> {
    return Promise.resolve(challengeIds.map((id) => this.instancesOf(id)));
  }

  poolState(challengeId: string): Promise<PoolState> {
    const identities = [...(this.instances.get(challengeId)?.keys() ?? [])];
    const claims = this.claims.get(challengeId);
    const pooled = identities.filter((identity) => !claims?.has(identity)).sort();
    return Promise.resolve({ pooled, claimed: identities.length - pooled.length });
  }

  findClaimed(challengeId: string, sourceId: string): Promise<Instance | undefined> {
    for (const [identity, claimant] of this.claims.get(challengeId) ?? []) {
      if (claimant !== sourceId) continue;
      const instance = this.read(challengeId, identity);
      if (instance !== undefined) return Promise.resolve(instance);
    }
    return Promise.resolve(undefined);
  }

  async findClaimedOfSource(sourceId: string): Promise<Instance[]> {
    const found: Instance[] = [];
    for (const challenge of await this.listChallenges()) {
      const instance = await this.findClaimed(challenge.id, sourceId);
      if (instance !== undefined) found.push(instance);
    }
    return found;
  }

  async claim(
    challengeId: string,
    identity: string,
    sourceId: string,
    save?: ClaimSave,
  ): Promise<boolean> {
    const won = await this.guard(identity, () => {
      if (!this.instances.get(challengeId)?.has(identity)) return false;
      const claims = this.bucket(this.claims, challengeId);
      if (claims.has(identity)) return false;
      claims.set(identity, sourceId);
      if (save !== undefined) this.write(save.record);
      return true;
    });
    if (won) await save?.alongside?.();
    return won;
  }

  upstreamState(challengeId: string, identity: string): Promise<unknown> {
    return this.guard(identity, () =>
      this.read(challengeId, identity) === undefined
        ? undefined
        : structuredClone(this.upstream.get(`${challengeId}/${identity}`)),
    );
  }

  dropUpstreamState(challengeId: string, identity: string): Promise<void> {
    return this.guard(identity, () => {
      this.upstream.delete(`${challengeId}/${identity}`);
    });
  }

  /** Marks a saved record as written by upstream, with `state` as its Pulumi deployment. */
  seedUpstream(challengeId: string, identity: string, state: unknown): void {
    this.upstream.set(`${challengeId}/${identity}`, structuredClone(state));
  }

  private instancesOf(challengeId: string): Instance[] {
    const identities = [...(this.instances.get(challengeId)?.keys() ?? [])];
    return identities
      .map((identity) => this.read(challengeId, identity))
      .filter((i): i is Instance => i !== undefined);
  }

  private read(challengeId: string, identity: string): Instance | undefined {
    const record = this.instances.get(challengeId)?.get(identity);
    if (record === undefined) return undefined;
    const copy = structuredClone(record);
    const sourceId = this.claims.get(challengeId)?.get(identity);
    return sourceId === undefined ? copy : { ...copy, sourceId };
  }

  private bucket<V>(maps: Map<string, Map<string, V>>, challengeId: string): Map<string, V> {
    let m = maps.get(challengeId);
    if (m === undefined) {
      m = new Map();
      maps.set(challengeId, m);
    }
    return m;
  }

  /** Same refusal as FsStateStore, as a rejected promise rather than a synchronous throw. */
  private guard<T>(identity: string, fn: () => T): Promise<T> {
    if (!IDENTITY_PATTERN.test(identity)) {
      return Promise.reject(new Error(`invalid instance identity ${JSON.stringify(identity)}`));
    }
    return Promise.resolve(fn());
  }
}

/** Drops keys set to undefined, so loads omit absent optional fields as the fs store does. */
function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}

// Challenges and instances written straight to DIR with the service's own state store: creating
// them through the API would run one preview (or up) each.
import { randomBytes } from 'node:crypto';
import { FsStateStore } from '../src/adapters/state/fs-state-store.adapter';
import type { Instance } from '../src/shared/domain';

/** An instance record of `challengeId` with a new identity: pooled, or claimed by `sourceId`. */
export function instanceRecord(challengeId: string, sourceId?: string): Instance {
  const now = new Date();
  const identity = randomBytes(8).toString('hex');
  return {
    challengeId,
    identity,
    since: now,
    lastRenew: now,
    connectionInfo: `http://${identity}.ctf.invalid`,
    flags: [`BENCH{${identity}}`],
    additional: {},
    ...(sourceId === undefined ? {} : { sourceId }),
  };
}

/** Writes `count` records, 50 at a time (the store's writes are fsynced one by one). */
export async function seedInstances(
  store: FsStateStore,
  count: number,
  make: (i: number) => Instance,
): Promise<string[]> {
  const identities: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) => make(i + j));
    await Promise.all(batch.map((x) => store.saveInstance(x)));
    identities.push(...batch.map((x) => x.identity));
  }
  return identities;
}

/** Writes challenges `seed-<from>` … `seed-<count - 1>` on `scenario` under `dir`. */
export async function seedChallenges(
  dir: string,
  count: number,
  scenario: string,
  from = 0,
): Promise<void> {
  const store = new FsStateStore({ dir });
  await store.onModuleInit();
  // 50 at a time: each save waits for its flushes, which the disk can share.
  for (let i = from; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) => i + j);
    await Promise.all(
      batch.map((n) =>
        store.saveChallenge({
          id: `seed-${n}`,
          scenario,
          timeoutMs: 600_000,
          additional: { i: String(n) },
          min: 0,
          max: 0,
        }),
      ),
    );
  }
}

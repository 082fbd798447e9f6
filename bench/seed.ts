// Challenges written straight to DIR with the service's own state store: creating them through
// the API would run one preview each.
import { FsStateStore } from '../src/adapters/state/fs-state-store.adapter';

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

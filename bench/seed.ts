// Challenges written straight to DIR with the service's own state store: creating them through
// the API would run one preview each.
import { FsStateStore } from '../src/adapters/state/fs-state-store.adapter';

/** Writes `count` challenges `seed-<i>` on `scenario` under `dir`. */
export async function seedChallenges(dir: string, count: number, scenario: string): Promise<void> {
  const store = new FsStateStore({ dir });
  await store.onModuleInit();
  for (let i = 0; i < count; i++) {
    await store.saveChallenge({
      id: `seed-${i}`,
      scenario,
      timeoutMs: 600_000,
      additional: { i: String(i) },
      min: 0,
      max: 0,
    });
  }
}

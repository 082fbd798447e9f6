import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stateStoreContract } from '../../../test/contract/state-store.contract';
import { T0, aPooledInstance, anIdentity, anInstance } from '../../../test/support/builders';
import { FixedClock } from '../../../test/support/fakes/fixed-clock';
import type { Claimed, Instance } from '../../shared/domain/instance';
import { FlagRecordingStateStore } from './flag-recording-state-store';
import { FsFlagRecords } from './fs-flag-records.adapter';
import { FsStateStore } from './fs-state-store.adapter';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const HOUR = 3_600_000;
const RETENTION = 10 * HOUR;
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const claimed = (overrides: Partial<Instance> = {}): Claimed<Instance> =>
  anInstance(overrides) as Claimed<Instance>;

/** Every file under `dir`, with its text. */
async function filesOf(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await readdir(dir, { recursive: true })) {
    const path = join(dir, name);
    if ((await stat(path)).isFile()) out.set(name, await readFile(path, 'utf8'));
  }
  return out;
}

stateStoreContract('FlagRecordingStateStore over FsStateStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cm-flag-state-'));
  const inner = new FsStateStore({ dir });
  const store = new FlagRecordingStateStore(
    inner,
    new FsFlagRecords({ dir, retentionMs: RETENTION }),
    new FixedClock(),
  );
  await store.onModuleInit();
  return { store, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('FsFlagRecords', () => {
  let dir: string;
  let records: FsFlagRecords;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cm-flag-records-'));
    records = new FsFlagRecords({ dir, retentionMs: RETENTION });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('should find the source of each flag of a recorded instance, and none for other flags or challenges', async () => {
    await records.record(claimed({ flags: ['CTF{a}', 'CTF{b}'] }), T0);
    await records.record(
      claimed({ identity: anIdentity(2), sourceId: 's2', flags: ['CTF{c}'] }),
      T0,
    );
    expect(await records.sourcesOf('chall-1', 'CTF{a}', T0)).toEqual(['source-1']);
    expect(await records.sourcesOf('chall-1', 'CTF{b}', T0)).toEqual(['source-1']);
    expect(await records.sourcesOf('chall-1', 'CTF{c}', T0)).toEqual(['s2']);
    expect(await records.sourcesOf('chall-1', 'CTF{z}', T0)).toEqual([]);
    expect(await records.sourcesOf('chall-2', 'CTF{a}', T0)).toEqual([]);
  });

  it('should list every source that had a flag when instances share it', async () => {
    await records.record(claimed({ sourceId: 'b', flags: ['CTF{static}'] }), T0);
    await records.record(
      claimed({ identity: anIdentity(2), sourceId: 'a', flags: ['CTF{static}'] }),
      T0,
    );
    expect(await records.sourcesOf('chall-1', 'CTF{static}', T0)).toEqual(['a', 'b']);
  });

  it('should store hashes only, in owner-only files, never the flag', async () => {
    await records.record(claimed({ flags: ['CTF{secret-flag}'] }), T0);
    await records.markDeleted('chall-1', anIdentity(1), T0);
    const files = await filesOf(join(dir, 'flag'));
    expect([...files.keys()].sort()).toEqual(
      ['key', `${md5('chall-1')}/${anIdentity(1)}.json`].sort(),
    );
    for (const [name, text] of files) {
      expect(text).not.toContain('secret-flag');
      expect((await stat(join(dir, 'flag', name))).mode & 0o777).toBe(0o600);
    }
    const record = JSON.parse(files.get(`${md5('chall-1')}/${anIdentity(1)}.json`)!) as Record<
      string,
      unknown
    >;
    expect(record).toMatchObject({
      challenge_id: 'chall-1',
      source_id: 'source-1',
      identity: anIdentity(1),
      since: T0.toISOString(),
      deleted_at: T0.toISOString(),
      flags: [expect.stringMatching(/^[0-9a-f]{64}$/)],
      retired: [],
    });
  });

  it('should keep a deleted instance’s flags valid until retention ends, then not', async () => {
    await records.record(claimed({ flags: ['CTF{a}'] }), T0);
    await records.markDeleted('chall-1', anIdentity(1), at(HOUR));
    expect(await records.sourcesOf('chall-1', 'CTF{a}', at(HOUR + RETENTION))).toEqual([
      'source-1',
    ]);
    expect(await records.sourcesOf('chall-1', 'CTF{a}', at(HOUR + RETENTION + 1))).toEqual([]);
  });

  it('should keep the flags a redeployment replaced valid for the retention period', async () => {
    await records.record(claimed({ flags: ['CTF{old}'] }), T0);
    await records.record(claimed({ flags: ['CTF{new}'] }), at(HOUR));
    expect(await records.sourcesOf('chall-1', 'CTF{old}', at(HOUR + RETENTION))).toEqual([
      'source-1',
    ]);
    expect(await records.sourcesOf('chall-1', 'CTF{old}', at(HOUR + RETENTION + 1))).toEqual([]);
    expect(await records.sourcesOf('chall-1', 'CTF{new}', at(HOUR + RETENTION + 1))).toEqual([
      'source-1',
    ]);
  });

  it('should drop replaced flags past retention at the next save', async () => {
    await records.record(claimed({ flags: ['CTF{old}'] }), T0);
    await records.record(claimed({ flags: ['CTF{new}'] }), at(HOUR));
    await records.record(
      claimed({ flags: ['CTF{new}'], until: at(9 * HOUR) }),
      at(HOUR + RETENTION + 1),
    );
    const record = JSON.parse(
      await readFile(join(dir, 'flag', md5('chall-1'), `${anIdentity(1)}.json`), 'utf8'),
    ) as { retired: unknown[] };
    expect(record.retired).toEqual([]);
  });

  it('should not rewrite a record a save did not change', async () => {
    await records.record(claimed(), T0);
    const path = join(dir, 'flag', md5('chall-1'), `${anIdentity(1)}.json`);
    await utimes(path, new Date(0), new Date(0));
    await records.record(claimed(), at(HOUR));
    expect((await stat(path)).mtimeMs).toBe(0);
  });

  it('should generate one key that every replica sharing DIR uses, even when they start together', async () => {
    const replicas = Array.from(
      { length: 4 },
      () => new FsFlagRecords({ dir, retentionMs: RETENTION }),
    );
    await Promise.all(
      replicas.map((r, k) =>
        r.record(
          claimed({ identity: anIdentity(k + 1), sourceId: `s${k}`, flags: [`CTF{${k}}`] }),
          T0,
        ),
      ),
    );
    for (const [k, r] of replicas.entries()) {
      for (let j = 0; j < replicas.length; j++) {
        expect(await r.sourcesOf('chall-1', `CTF{${j}}`, T0)).toEqual([`s${j}`]);
      }
      expect(k).toBeGreaterThanOrEqual(0);
    }
    expect((await readdir(join(dir, 'flag'))).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('should hash with FLAG_HASH_KEY when given, and write no key file', async () => {
    const keyed = new FsFlagRecords({ dir, hashKey: 'k'.repeat(16), retentionMs: RETENTION });
    await keyed.record(claimed(), T0);
    expect(existsSync(join(dir, 'flag', 'key'))).toBe(false);
    expect(await keyed.sourcesOf('chall-1', 'CTF{fixed-flag}', T0)).toEqual(['source-1']);
    // Another key: the same flag hashes to something else.
    const other = new FsFlagRecords({ dir, hashKey: 'x'.repeat(16), retentionMs: RETENTION });
    expect(await other.sourcesOf('chall-1', 'CTF{fixed-flag}', T0)).toEqual([]);
  });

  it('should refuse a key file that holds no key instead of hashing with garbage', async () => {
    await records.record(claimed(), T0);
    await writeFile(join(dir, 'flag', 'key'), 'short\n');
    const fresh = new FsFlagRecords({ dir, retentionMs: RETENTION });
    await expect(fresh.sourcesOf('chall-1', 'CTF{fixed-flag}', T0)).rejects.toThrow('flag/key');
  });

  it('should remove every record of a challenge with it', async () => {
    await records.record(claimed(), T0);
    await records.record(claimed({ challengeId: 'chall-2' }), T0);
    await records.removeChallenge('chall-1');
    expect(existsSync(join(dir, 'flag', md5('chall-1')))).toBe(false);
    expect(await records.sourcesOf('chall-2', 'CTF{fixed-flag}', T0)).toEqual(['source-1']);
  });

  it('should purge records past retention, keep the others, and mark those whose instance is gone', async () => {
    // Orphans are told by the files' age, so this test's instants follow the real clock.
    const base = Date.now() + 1000;
    const when = (ms: number): Date => new Date(base + ms);
    const orphanAware = new FsFlagRecords({ dir, retentionMs: RETENTION, orphanAfterMs: 0 });
    await orphanAware.record(claimed({ identity: anIdentity(1) }), when(0));
    await orphanAware.record(claimed({ identity: anIdentity(2), sourceId: 's2' }), when(0));
    await orphanAware.record(claimed({ identity: anIdentity(3), sourceId: 's3' }), when(0));
    await orphanAware.markDeleted('chall-1', anIdentity(1), when(0));
    const live = new Set([anIdentity(3)]);
    const isLive = (_c: string, identity: string): Promise<boolean> =>
      Promise.resolve(live.has(identity));

    // 1 deleted (in retention), 2 gone without a mark (marked now), 3 live.
    expect(await orphanAware.purge(when(HOUR), isLive)).toBe(0);
    const two = JSON.parse(
      await readFile(join(dir, 'flag', md5('chall-1'), `${anIdentity(2)}.json`), 'utf8'),
    ) as { deleted_at?: string };
    expect(two.deleted_at).toBe(when(HOUR).toISOString());

    expect(await orphanAware.purge(when(RETENTION + 1), isLive)).toBe(1);
    expect(await orphanAware.purge(when(HOUR + RETENTION + 1), isLive)).toBe(1);
    expect((await readdir(join(dir, 'flag', md5('chall-1')))).sort()).toEqual([
      `${anIdentity(3)}.json`,
    ]);
  });

  it('should leave a young record alone in the purge: its instance may be being saved', async () => {
    await records.record(claimed(), T0);
    expect(await records.purge(new Date(), () => Promise.resolve(false))).toBe(0);
    const record = JSON.parse(
      await readFile(join(dir, 'flag', md5('chall-1'), `${anIdentity(1)}.json`), 'utf8'),
    ) as { deleted_at?: string };
    expect(record.deleted_at).toBeUndefined();
  });
});

describe('FlagRecordingStateStore', () => {
  let dir: string;
  let store: FlagRecordingStateStore;
  let records: FsFlagRecords;
  const clock = new FixedClock();

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cm-flag-recording-'));
    records = new FsFlagRecords({ dir, retentionMs: RETENTION });
    store = new FlagRecordingStateStore(new FsStateStore({ dir }), records, clock);
    await store.onModuleInit();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('should record the flags of claimed instances only, and start their retention on delete', async () => {
    await store.saveInstance(aPooledInstance({ identity: anIdentity(2), flags: ['CTF{p}'] }));
    await store.saveInstance(anInstance());
    expect(existsSync(join(dir, 'flag', md5('chall-1'), `${anIdentity(2)}.json`))).toBe(false);
    expect(await records.sourcesOf('chall-1', 'CTF{fixed-flag}', T0)).toEqual(['source-1']);

    clock.set(at(HOUR));
    await store.deleteInstance('chall-1', anIdentity(1));
    expect(await store.loadInstance('chall-1', anIdentity(1))).toBeUndefined();
    expect(await records.sourcesOf('chall-1', 'CTF{fixed-flag}', at(HOUR + RETENTION))).toEqual([
      'source-1',
    ]);
    expect(await records.sourcesOf('chall-1', 'CTF{fixed-flag}', at(HOUR + RETENTION + 1))).toEqual(
      [],
    );
  });

  it("should record the flags of a claim that saves its record, and only the winner's of a race", async () => {
    await store.saveInstance(aPooledInstance({ flags: ['CTF{pooled}'] }));
    // Two stores over one directory: two replicas racing for one pooled instance.
    const other = new FlagRecordingStateStore(new FsStateStore({ dir }), records, clock);
    const claimAs = (by: FlagRecordingStateStore, sourceId: string): Promise<boolean> =>
      by.claim('chall-1', anIdentity(1), sourceId, {
        record: claimed({ sourceId, flags: [`CTF{${sourceId}}`] }),
      });
    const [alice, bob] = await Promise.all([claimAs(store, 'alice'), claimAs(other, 'bob')]);
    expect([alice, bob].filter(Boolean)).toHaveLength(1);
    const winner = alice ? 'alice' : 'bob';
    const loser = alice ? 'bob' : 'alice';
    expect(await records.sourcesOf('chall-1', `CTF{${winner}}`, T0)).toEqual([winner]);
    expect(await records.sourcesOf('chall-1', `CTF{${loser}}`, T0)).toEqual([]);
    expect(await records.sourcesOf('chall-1', 'CTF{pooled}', T0)).toEqual([]);
    // Nothing staged is left behind by either side.
    const names = [...(await filesOf(dir)).keys()];
    expect(names.filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('should drop the flag records with the challenge', async () => {
    await store.saveInstance(anInstance());
    await store.deleteInstance('chall-1', anIdentity(1));
    await store.deleteChallenge('chall-1');
    expect(existsSync(join(dir, 'flag', md5('chall-1')))).toBe(false);
  });
});

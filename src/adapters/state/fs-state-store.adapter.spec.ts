import { Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stateStoreContract } from '../../../test/contract/state-store.contract';
import {
  aChallenge,
  anIdentity,
  anInstance,
  aPooledInstance,
} from '../../../test/support/builders';
import { FsStateStore } from './fs-state-store.adapter';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

async function makeStore(): Promise<{
  store: FsStateStore;
  dir: string;
  cleanup: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'cm-fs-state-'));
  const store = new FsStateStore({ dir });
  await store.onModuleInit();
  return { store, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

stateStoreContract('FsStateStore', makeStore);

describe('FsStateStore', () => {
  let store: FsStateStore;
  let dir: string;
  let cleanup: () => Promise<void>;
  const challDir = (id: string): string => join(dir, 'chall', md5(id));
  /** Edits the record in place, its inode, size and times kept: only its change time moves. */
  const rewriteInPlace = async (id: string, from: string, to: string): Promise<void> => {
    const path = join(challDir(id), 'info.json');
    const before = await stat(path);
    await writeFile(path, (await readFile(path, 'utf8')).replace(from, to));
    await utimes(path, before.atime, before.mtime);
  };
  /** Ages the record so that its file's stamp may be kept (see loadChallenge). */
  const settle = async (id: string): Promise<void> => {
    const past = new Date(Date.now() - 60_000);
    await utimes(join(challDir(id), 'info.json'), past, past);
  };
  const instDir = (id: string, identity: string): string =>
    join(challDir(id), 'instance', identity);

  beforeEach(async () => {
    ({ store, dir, cleanup } = await makeStore());
    // Skipped entries are logged as warnings; keep the test output quiet but observable.
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await cleanup();
  });

  describe('onModuleInit', () => {
    it('should create <dir>/chall when the directory does not exist yet', async () => {
      const fresh = join(dir, 'nested', 'state');
      await new FsStateStore({ dir: fresh }).onModuleInit();
      expect((await stat(join(fresh, 'chall'))).isDirectory()).toBe(true);
    });

    it('should remove stale temp files and tombstones and keep fresh ones when started', async () => {
      await store.saveInstance(anInstance());
      const old = new Date(Date.now() - 60 * 60_000);
      const staleTemp = join(instDir('chall-1', anIdentity(1)), '.info.json.tmp-1-dead');
      const freshTemp = join(instDir('chall-1', anIdentity(1)), '.claim.tmp-2-beef');
      const staleTombstone = join(dir, 'chall', `.deleted-${md5('gone')}-1-dead`);
      await writeFile(staleTemp, '{"torn');
      await writeFile(freshTemp, 'x');
      await mkdir(join(staleTombstone, 'instance'), { recursive: true });
      await utimes(staleTemp, old, old);
      await utimes(staleTombstone, old, old);

      await new FsStateStore({ dir }).onModuleInit();

      expect(existsSync(staleTemp)).toBe(false);
      expect(existsSync(staleTombstone)).toBe(false);
      expect(existsSync(freshTemp)).toBe(true);
      expect(await store.loadInstance('chall-1', anIdentity(1))).toStrictEqual(anInstance());
    });
  });

  describe('saveChallenge', () => {
    it("should write upstream's info.json under chall/<md5(id)> when a challenge is saved", async () => {
      await store.saveChallenge(
        aChallenge({
          id: 'my/chall',
          timeoutMs: 600_000,
          until: new Date('2026-03-04T05:06:07.120Z'),
          additional: { k: 'v' },
          min: 1,
          max: 3,
        }),
      );
      const text = await readFile(join(challDir('my/chall'), 'info.json'), 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      expect(JSON.parse(text)).toStrictEqual({
        id: 'my/chall',
        scenario: 'localhost:5000/scenarios/chall-1:v1',
        until: '2026-03-04T05:06:07.12Z',
        timeout: 600_000_000_000,
        additional: { k: 'v' },
        min: 1,
        max: 3,
      });
      expect((await stat(join(challDir('my/chall'), 'instance'))).isDirectory()).toBe(true);
    });

    it('should omit until, timeout and additional when they are unset or empty', async () => {
      await store.saveChallenge(aChallenge());
      const doc: unknown = JSON.parse(
        await readFile(join(challDir('chall-1'), 'info.json'), 'utf8'),
      );
      expect(doc).toStrictEqual({
        id: 'chall-1',
        scenario: 'localhost:5000/scenarios/chall-1:v1',
        min: 0,
        max: 0,
      });
    });

    it('should leave no temp file behind when a write completes', async () => {
      await store.saveChallenge(aChallenge());
      await store.saveChallenge(aChallenge({ min: 1, max: 1 }));
      expect((await readdir(challDir('chall-1'))).sort()).toEqual([
        'info.json',
        'instance',
        'source',
      ]);
      expect(await readdir(join(challDir('chall-1'), 'source'))).toEqual(['.complete']);
    });
  });

  describe('loadChallenge', () => {
    it('should read a record written by upstream when it has nanoseconds and an offset', async () => {
      await mkdir(challDir('legacy'), { recursive: true });
      await writeFile(
        join(challDir('legacy'), 'info.json'),
        '{"id":"legacy","scenario":"registry:5000/s:v1","until":"2026-03-04T07:06:07.123456789+02:00",' +
          '"timeout":1500000000,"min":0,"max":0,"unknown":true}\n',
      );
      expect(await store.loadChallenge('legacy')).toStrictEqual({
        id: 'legacy',
        scenario: 'registry:5000/s:v1',
        until: new Date('2026-03-04T05:06:07.123Z'),
        timeoutMs: 1_500,
        additional: {},
        min: 0,
        max: 0,
      });
    });

    it('should throw when the info.json is garbage', async () => {
      await mkdir(challDir('broken'), { recursive: true });
      await writeFile(join(challDir('broken'), 'info.json'), '{"id":"bro');
      await expect(store.loadChallenge('broken')).rejects.toThrow();
    });

    it("should see another replica's same-sized rewrite of a kept record", async () => {
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      await store.saveChallenge(aChallenge({ max: 3 }));
      await settle('chall-1');
      expect((await store.loadChallenge('chall-1'))?.max).toBe(3);
      expect((await store.loadChallenge('chall-1'))?.max).toBe(3);
      await other.saveChallenge(aChallenge({ max: 4 }));
      await settle('chall-1');
      expect((await store.loadChallenge('chall-1'))?.max).toBe(4);
      await other.deleteChallenge('chall-1');
      expect(await store.loadChallenge('chall-1')).toBeUndefined();
    });

    it('should see a rewrite in place that keeps the inode, size and times but the change time', async () => {
      await store.saveChallenge(aChallenge({ max: 3 }));
      await settle('chall-1');
      expect((await store.loadChallenge('chall-1'))?.max).toBe(3);
      await rewriteInPlace('chall-1', '"max":3', '"max":5');
      expect((await store.loadChallenge('chall-1'))?.max).toBe(5);
    });

    it('should hand out copies of a kept record', async () => {
      await store.saveChallenge(aChallenge({ until: new Date('2030-01-01T00:00:00Z') }));
      await settle('chall-1');
      const first = await store.loadChallenge('chall-1');
      first!.additional.changed = 'yes';
      first!.until!.setTime(0);
      expect(await store.loadChallenge('chall-1')).toStrictEqual(
        aChallenge({ until: new Date('2030-01-01T00:00:00Z') }),
      );
    });
  });

  describe('listChallenges', () => {
    it('should skip and warn about broken entries when others are fine', async () => {
      const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      await store.saveChallenge(aChallenge({ id: 'good' }));
      // Torn write, half-created directory, wrong shape, directory name not matching the id.
      await mkdir(challDir('torn'), { recursive: true });
      await writeFile(join(challDir('torn'), 'info.json'), '{"id":"torn","scen');
      await mkdir(challDir('half'), { recursive: true });
      await mkdir(challDir('shape'), { recursive: true });
      await writeFile(join(challDir('shape'), 'info.json'), '{"id":42}');
      await mkdir(join(dir, 'chall', 'not-a-hash'), { recursive: true });
      await writeFile(
        join(dir, 'chall', 'not-a-hash', 'info.json'),
        JSON.stringify({ id: 'x', scenario: 's', min: 0, max: 0 }),
      );
      await writeFile(join(dir, 'chall', 'stray-file'), 'x');

      expect((await store.listChallenges()).map((c) => c.id)).toEqual(['good']);
      expect(warn).toHaveBeenCalledTimes(5);
    });

    it("should see another replica's rewrites at once, and hand out copies, when it listed before", async () => {
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      await store.saveChallenge(aChallenge({ additional: { k: 'a' } }));
      const listed = await other.listChallenges();
      expect(listed).toStrictEqual([aChallenge({ additional: { k: 'a' } })]);
      listed[0]!.additional.k = 'mutated';

      expect(await other.listChallenges()).toStrictEqual([aChallenge({ additional: { k: 'a' } })]);
      // Same size, within the same instant: only the text tells.
      await store.saveChallenge(aChallenge({ additional: { k: 'b' } }));
      expect(await other.listChallenges()).toStrictEqual([aChallenge({ additional: { k: 'b' } })]);

      await writeFile(join(challDir('chall-1'), 'info.json'), '{"id":"chall-1","sc');
      expect(await other.listChallenges()).toEqual([]);
      await store.saveChallenge(aChallenge({ additional: { k: 'b' } }));
      expect(await other.listChallenges()).toStrictEqual([aChallenge({ additional: { k: 'b' } })]);
      await store.deleteChallenge('chall-1');
      expect(await other.listChallenges()).toEqual([]);
    });

    it("should see another replica's rewrites in loads and listings taking turns on one kept record", async () => {
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      await store.saveChallenge(aChallenge({ max: 3 }));
      await settle('chall-1');
      // A settled load keeps the file's stamp; a listing reading a new text must drop it.
      expect((await other.loadChallenge('chall-1'))?.max).toBe(3);
      await rewriteInPlace('chall-1', '"max":3', '"max":5');
      expect((await other.listChallenges()).map((c) => c.max)).toEqual([5]);
      expect((await other.loadChallenge('chall-1'))?.max).toBe(5);
      // A listing first, then a load of a record rewritten meanwhile with the same size.
      await store.saveChallenge(aChallenge({ max: 7 }));
      expect((await other.listChallenges()).map((c) => c.max)).toEqual([7]);
      await store.saveChallenge(aChallenge({ max: 8 }));
      await settle('chall-1');
      expect((await other.loadChallenge('chall-1'))?.max).toBe(8);
      expect((await other.listChallenges()).map((c) => c.max)).toEqual([8]);
      const loaded = await other.loadChallenge('chall-1');
      loaded!.additional.changed = 'yes';
      expect(await other.listChallenges()).toStrictEqual([aChallenge({ max: 8 })]);
    });

    it('should ignore a leftover temp file when a crash interrupted a write', async () => {
      await store.saveChallenge(aChallenge());
      await writeFile(join(challDir('chall-1'), '.info.json.tmp-99-abcdef'), '{"id":"chall-1","sc');
      await writeFile(join(dir, 'chall', '.deleted-x-1-2'), '');
      expect(await store.listChallenges()).toStrictEqual([aChallenge()]);
      expect(await store.loadChallenge('chall-1')).toStrictEqual(aChallenge());
    });
  });

  describe('saveInstance', () => {
    it("should write upstream's instance info.json and claim file when a claimed instance is saved", async () => {
      const instance = anInstance({
        until: new Date('2026-01-01T01:00:00Z'),
        flags: ['CTF{a}', 'CTF{b}'],
        additional: { k: 'v' },
      });
      await store.saveInstance(instance);
      const d = instDir('chall-1', instance.identity);
      expect(JSON.parse(await readFile(join(d, 'info.json'), 'utf8'))).toStrictEqual({
        identity: anIdentity(1),
        challenge_id: 'chall-1',
        since: '2026-01-01T00:00:00Z',
        last_renew: '2026-01-01T00:00:00Z',
        until: '2026-01-01T01:00:00Z',
        connection_info: 'nc 127.0.0.1 1337',
        flags: ['CTF{a}', 'CTF{b}'],
        additional: { k: 'v' },
      });
      expect(await readFile(join(d, 'claim'), 'utf8')).toBe('source-1');
      expect((await stat(join(d, 'claim'))).mode & 0o777).toBe(0o600);
    });

    it('should write no claim file and omit empty fields when a bare pooled instance is saved', async () => {
      await store.saveInstance(aPooledInstance({ flags: [] }));
      const d = instDir('chall-1', anIdentity(1));
      expect(await readdir(d)).toEqual(['info.json']);
      expect(
        Object.keys(JSON.parse(await readFile(join(d, 'info.json'), 'utf8')) as object),
      ).toEqual(['identity', 'challenge_id', 'since', 'last_renew', 'connection_info']);
    });

    it('should refuse an identity like ../x and touch nothing outside <dir>', async () => {
      const before = await readdir(join(dir, '..'));
      await expect(store.saveInstance(anInstance({ identity: '../x' }))).rejects.toThrow(
        /invalid instance identity/,
      );
      await expect(store.claim('chall-1', '../../../x', 's')).rejects.toThrow();
      expect(await readdir(join(dir, '..'))).toEqual(before);
      expect(await readdir(join(dir, 'chall'))).toEqual([]);
    });
  });

  describe('claim', () => {
    it('should write the raw source id with mode 0600 when the claim wins', async () => {
      await store.saveInstance(aPooledInstance());
      expect(await store.claim('chall-1', anIdentity(1), 'team ünïcode')).toBe(true);
      const claim = join(instDir('chall-1', anIdentity(1)), 'claim');
      expect(await readFile(claim)).toEqual(Buffer.from('team ünïcode', 'utf8'));
      expect((await stat(claim)).mode & 0o777).toBe(0o600);
      expect((await readdir(instDir('chall-1', anIdentity(1)))).sort()).toEqual([
        'claim',
        'info.json',
      ]);
    });

    it('should let exactly one claim win when two stores share the directory', async () => {
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      for (let n = 1; n <= 10; n++)
        await store.saveInstance(aPooledInstance({ identity: anIdentity(n) }));
      for (let n = 1; n <= 10; n++) {
        const results = await Promise.all([
          store.claim('chall-1', anIdentity(n), `a-${n}`),
          other.claim('chall-1', anIdentity(n), `b-${n}`),
          store.claim('chall-1', anIdentity(n), `c-${n}`),
          other.claim('chall-1', anIdentity(n), `d-${n}`),
        ]);
        expect(results.filter(Boolean)).toHaveLength(1);
      }
      const claimed = await other.listInstances('chall-1');
      expect(claimed.every((i) => i.sourceId !== undefined)).toBe(true);
    });

    it('should read a claim file written by upstream as the source id', async () => {
      await store.saveInstance(aPooledInstance());
      await writeFile(join(instDir('chall-1', anIdentity(1)), 'claim'), 'legacy-team', {
        mode: 0o600,
      });
      expect((await store.findClaimed('chall-1', 'legacy-team'))?.identity).toBe(anIdentity(1));
      expect(await store.claim('chall-1', anIdentity(1), 'new-team')).toBe(false);
    });
  });

  describe('poolState', () => {
    it('should not count the instances it hands out, nor those another replica took', async () => {
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      for (let n = 1; n <= 4; n++)
        await store.saveInstance(aPooledInstance({ identity: anIdentity(n) }));
      expect(await store.poolState('chall-1')).toStrictEqual({
        pooled: [1, 2, 3, 4].map(anIdentity),
        claimed: 0,
      });
      expect(await store.claim('chall-1', anIdentity(1), 'a')).toBe(true);
      expect(await other.claim('chall-1', anIdentity(2), 'b')).toBe(true);
      expect(await store.poolState('chall-1')).toStrictEqual({
        pooled: [2, 3, 4].map(anIdentity),
        claimed: 1,
      });
      // The other replica's claim is found by the claim itself, which then drops the candidate.
      expect(await store.claim('chall-1', anIdentity(2), 'c')).toBe(false);
      expect(await store.poolState('chall-1')).toStrictEqual({
        pooled: [3, 4].map(anIdentity),
        claimed: 2,
      });
      await other.deleteInstance('chall-1', anIdentity(3));
      expect(await store.claim('chall-1', anIdentity(3), 'd')).toBe(false);
      expect((await store.poolState('chall-1')).pooled).toStrictEqual([anIdentity(4)]);
    });

    it('should list its own pooled saves at once, and scan again when it has no candidate left', async () => {
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      await store.saveInstance(aPooledInstance({ identity: anIdentity(1) }));
      expect((await store.poolState('chall-1')).pooled).toStrictEqual([anIdentity(1)]);
      await store.saveInstance(aPooledInstance({ identity: anIdentity(2) }));
      expect((await store.poolState('chall-1')).pooled).toStrictEqual([1, 2].map(anIdentity));
      expect(await store.claim('chall-1', anIdentity(1), 'a')).toBe(true);
      expect(await store.claim('chall-1', anIdentity(2), 'b')).toBe(true);
      // Another replica's new pooled instance: an empty pool is always looked at again.
      await other.saveInstance(aPooledInstance({ identity: anIdentity(3) }));
      expect(await store.poolState('chall-1')).toStrictEqual({
        pooled: [anIdentity(3)],
        claimed: 2,
      });
    });
  });

  describe('creation marks', () => {
    it("should take a mark nobody touched for seconds for a crashed replica's", async () => {
      await store.saveChallenge(aChallenge());
      const mark = await store.beginCreation('chall-1', 'alice');
      const path = join(challDir('chall-1'), 'source', md5('alice'), '.creating');
      expect(await store.creationUnderway('chall-1', 'alice')).toBe(true);
      const past = new Date(Date.now() - 10_000);
      await utimes(path, past, past);
      expect(await store.creationUnderway('chall-1', 'alice')).toBe(false);
      await mark.end();
      // A creation that made no instance leaves no directory for its source.
      expect(await readdir(join(challDir('chall-1'), 'source'))).toEqual(['.complete']);
    });

    it('should keep a live mark fresh while the creation lasts', async () => {
      await store.saveChallenge(aChallenge());
      const mark = await store.beginCreation('chall-1', 'alice');
      const path = join(challDir('chall-1'), 'source', md5('alice'), '.creating');
      const past = new Date(Date.now() - 10_000);
      await utimes(path, past, past);
      await vi.waitFor(async () =>
        expect(await store.creationUnderway('chall-1', 'alice')).toBe(true),
      );
      await mark.end();
    });
  });

  describe('listInstances', () => {
    it('should skip temp files, tombstones, half-created and broken instances', async () => {
      await store.saveInstance(anInstance());
      const instances = join(challDir('chall-1'), 'instance');
      await writeFile(join(instDir('chall-1', anIdentity(1)), '.info.json.tmp-1-2'), '{');
      await mkdir(join(instances, `.deleted-${anIdentity(7)}-1-2`));
      await mkdir(join(instances, anIdentity(8)));
      await mkdir(join(instances, anIdentity(9)));
      await writeFile(join(instances, anIdentity(9), 'info.json'), 'garbage');
      await mkdir(join(instances, 'NOT-AN-IDENTITY'));

      expect(await store.listInstances('chall-1')).toStrictEqual([anInstance()]);
      expect(await store.findClaimed('chall-1', 'source-1')).toStrictEqual(anInstance());
    });
  });

  describe('listInstancesOf', () => {
    it('should skip what listInstances skips, challenge by challenge, when the listing is long', async () => {
      await store.saveInstance(anInstance());
      await store.saveInstance(aPooledInstance({ challengeId: 'b', identity: anIdentity(2) }));
      const instances = join(challDir('chall-1'), 'instance');
      await mkdir(join(instances, `.deleted-${anIdentity(7)}-1-2`));
      await mkdir(join(instances, anIdentity(8)));
      await mkdir(join(instances, anIdentity(9)));
      await writeFile(join(instances, anIdentity(9), 'info.json'), 'garbage');
      // Long enough to be read off the main thread.
      const missing = Array.from({ length: 300 }, (_, i) => `missing-${i}`);

      const lists = await store.listInstancesOf(['chall-1', ...missing, 'b']);

      expect(lists).toHaveLength(302);
      expect(lists[0]).toStrictEqual([anInstance()]);
      expect(lists[301]).toStrictEqual([
        aPooledInstance({ challengeId: 'b', identity: anIdentity(2) }),
      ]);
      expect(lists.slice(1, 301).flat()).toEqual([]);
    });

    it("should see another replica's claims, new instances and deletions at once", async () => {
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      await store.saveChallenge(aChallenge());
      await store.saveInstance(aPooledInstance({ identity: anIdentity(1) }));
      expect(await other.listInstancesOf(['chall-1'])).toStrictEqual([
        [aPooledInstance({ identity: anIdentity(1) })],
      ]);

      expect(await store.claim('chall-1', anIdentity(1), 'alice')).toBe(true);
      await store.saveInstance(anInstance({ identity: anIdentity(2), sourceId: 'bob' }));
      expect(await other.listInstancesOf(['chall-1'])).toStrictEqual([
        [
          anInstance({ identity: anIdentity(1), sourceId: 'alice' }),
          anInstance({ identity: anIdentity(2), sourceId: 'bob' }),
        ],
      ]);

      await store.deleteInstance('chall-1', anIdentity(1));
      expect(await other.listInstancesOf(['chall-1'])).toStrictEqual([
        [anInstance({ identity: anIdentity(2), sourceId: 'bob' })],
      ]);
    });
  });

  describe('deleteInstance', () => {
    it('should remove the instance directory and leave no tombstone when it completes', async () => {
      await store.saveInstance(anInstance());
      await store.deleteInstance('chall-1', anIdentity(1));
      expect(await readdir(join(challDir('chall-1'), 'instance'))).toEqual([]);
    });
  });

  describe('deleteChallenge', () => {
    it('should remove chall/<md5(id)> and leave no tombstone when it completes', async () => {
      await store.saveChallenge(aChallenge());
      await store.saveInstance(anInstance());
      await store.deleteChallenge('chall-1');
      expect(await readdir(join(dir, 'chall'))).toEqual([]);
    });
  });

  describe('source index', () => {
    const claimOnDisk = async (identity: string, sourceId: string): Promise<void> => {
      await mkdir(instDir('chall-1', identity), { recursive: true });
      await writeFile(
        join(instDir('chall-1', identity), 'info.json'),
        JSON.stringify({
          identity,
          challenge_id: 'chall-1',
          since: '2026-12-02T10:15:30Z',
          last_renew: '2026-12-02T10:15:30Z',
          connection_info: 'nc 127.0.0.1 1337',
        }),
      );
      await writeFile(join(instDir('chall-1', identity), 'claim'), sourceId);
    };

    it('should find claims made before the index existed, and index them when started', async () => {
      // A challenge as upstream (or an earlier version of this service) left it: no index.
      await store.saveChallenge(aChallenge());
      await rm(join(challDir('chall-1'), 'source'), { recursive: true });
      await claimOnDisk(anIdentity(1), 'alice');
      await claimOnDisk(anIdentity(2), 'bob');
      expect((await store.findClaimed('chall-1', 'alice'))?.identity).toBe(anIdentity(1));

      const restarted = new FsStateStore({ dir });
      await restarted.onModuleInit();
      expect(await readdir(join(challDir('chall-1'), 'source', md5('bob')))).toEqual([
        anIdentity(2),
      ]);
      expect(existsSync(join(challDir('chall-1'), 'source', '.complete'))).toBe(true);
      expect((await restarted.findClaimed('chall-1', 'alice'))?.identity).toBe(anIdentity(1));
      expect((await restarted.findClaimed('chall-1', 'bob'))?.identity).toBe(anIdentity(2));
      expect(await restarted.findClaimed('chall-1', 'carol')).toBeUndefined();
    });

    it('should ignore an entry whose instance an operator removed by hand', async () => {
      await store.saveChallenge(aChallenge());
      await store.saveInstance(anInstance({ identity: anIdentity(1), sourceId: 'alice' }));
      await rm(instDir('chall-1', anIdentity(1)), { recursive: true });
      expect(await store.findClaimed('chall-1', 'alice')).toBeUndefined();
      await store.saveInstance(anInstance({ identity: anIdentity(2), sourceId: 'alice' }));
      expect((await store.findClaimed('chall-1', 'alice'))?.identity).toBe(anIdentity(2));
    });

    it("should find a source's claims across challenges with and without an index, and skip broken challenges", async () => {
      await store.saveChallenge(aChallenge());
      await rm(join(challDir('chall-1'), 'source'), { recursive: true });
      await claimOnDisk(anIdentity(1), 'alice');
      await store.saveChallenge(aChallenge({ id: 'chall-2' }));
      await store.saveInstance(
        anInstance({ challengeId: 'chall-2', identity: anIdentity(2), sourceId: 'alice' }),
      );
      await store.saveChallenge(aChallenge({ id: 'broken' }));
      await store.saveInstance(
        anInstance({ challengeId: 'broken', identity: anIdentity(3), sourceId: 'alice' }),
      );
      await writeFile(join(challDir('broken'), 'info.json'), '{not json');
      const found = await store.findClaimedOfSource('alice');
      expect(found.map((i) => i.identity).sort()).toEqual([anIdentity(1), anIdentity(2)]);
      // In directory order, as listChallenges gives the challenges.
      expect(found.map((i) => md5(i.challengeId))).toEqual(
        found.map((i) => md5(i.challengeId)).sort(),
      );
    });

    it('should not list an instance another replica deleted when its claim was read before', async () => {
      await store.saveChallenge(aChallenge());
      await store.saveInstance(anInstance({ identity: anIdentity(1), sourceId: 'alice' }));
      const other = new FsStateStore({ dir });
      await other.onModuleInit();
      expect(await other.findClaimedOfSource('alice')).toHaveLength(1);
      expect(await other.listInstances('chall-1')).toHaveLength(1);
      await store.deleteInstance('chall-1', anIdentity(1));
      expect(await other.findClaimedOfSource('alice')).toEqual([]);
      expect(await other.listInstances('chall-1')).toEqual([]);
      expect(await other.findClaimed('chall-1', 'alice')).toBeUndefined();
    });

    it('should remove the entry of an instance when the instance is deleted', async () => {
      await store.saveChallenge(aChallenge());
      await store.saveInstance(aPooledInstance({ identity: anIdentity(1) }));
      expect(await store.claim('chall-1', anIdentity(1), 'alice')).toBe(true);
      const entries = join(challDir('chall-1'), 'source', md5('alice'));
      expect(await readdir(entries)).toEqual([anIdentity(1)]);
      await store.deleteInstance('chall-1', anIdentity(1));
      expect(await readdir(entries)).toEqual([]);
    });
  });

  describe('records written by upstream (Go)', () => {
    const identity = anIdentity(7);
    const state = { manifest: { time: 'x' }, resources: [{ urn: 'urn:pulumi:s::p::t::n' }] };
    /** upstream's pkg/fs Instance as Go's json.Encoder writes it. */
    const upstreamText = (fields: Record<string, unknown> = {}): string =>
      `${JSON.stringify({
        identity,
        challenge_id: 'chall-1',
        state,
        since: '2026-12-02T10:15:30.123456789+01:00',
        last_renew: '2026-12-02T10:15:30.123456789+01:00',
        until: '2099-01-01T00:00:00Z',
        connection_info: 'nc 127.0.0.1 1337',
        flags: ['CTF{up}'],
        ...fields,
      })}\n`;
    const writeUpstream = async (text: string): Promise<void> => {
      await store.saveChallenge(aChallenge());
      await mkdir(instDir('chall-1', identity), { recursive: true });
      await writeFile(join(instDir('chall-1', identity), 'info.json'), text);
      await writeFile(join(instDir('chall-1', identity), 'claim'), 'alice');
    };
    const onDisk = async (): Promise<Record<string, unknown>> =>
      JSON.parse(await readFile(join(instDir('chall-1', identity), 'info.json'), 'utf8')) as Record<
        string,
        unknown
      >;

    it('should give the Pulumi deployment upstream stored, and none for our records', async () => {
      await writeUpstream(upstreamText());
      expect(await store.upstreamState('chall-1', identity)).toEqual(state);
      await store.saveInstance(anInstance({ identity: anIdentity(8) }));
      expect(await store.upstreamState('chall-1', anIdentity(8))).toBeUndefined();
      expect(await store.upstreamState('chall-1', anIdentity(9))).toBeUndefined();
    });

    it('should treat a null state (upstream without connection_info output) as none', async () => {
      await writeUpstream(upstreamText({ state: null }));
      expect(await store.upstreamState('chall-1', identity)).toBeUndefined();
    });

    it('should keep the state through a save (a renewal) until it is dropped', async () => {
      await writeUpstream(upstreamText());
      const loaded = (await store.loadInstance('chall-1', identity))!;
      await store.saveInstance({ ...loaded, lastRenew: new Date('2026-12-02T12:00:00Z') });
      expect(await onDisk()).toMatchObject({ state, last_renew: '2026-12-02T12:00:00Z' });

      await store.dropUpstreamState('chall-1', identity);
      const after = await onDisk();
      expect(after).not.toHaveProperty('state');
      expect(after).toMatchObject({ identity, last_renew: '2026-12-02T12:00:00Z' });
      expect(await store.loadInstance('chall-1', identity)).toEqual({
        ...loaded,
        lastRenew: new Date('2026-12-02T12:00:00Z'),
      });
    });

    it('should rewrite the record in our format keeping every field upstream recorded', async () => {
      await writeUpstream(upstreamText({ additional: { k: 'v' } }));
      const before = await store.loadInstance('chall-1', identity);

      await store.dropUpstreamState('chall-1', identity);
      expect(await onDisk()).toEqual({
        identity,
        challenge_id: 'chall-1',
        since: '2026-12-02T09:15:30.123Z',
        last_renew: '2026-12-02T09:15:30.123Z',
        until: '2099-01-01T00:00:00Z',
        connection_info: 'nc 127.0.0.1 1337',
        flags: ['CTF{up}'],
        additional: { k: 'v' },
      });
      expect(await store.loadInstance('chall-1', identity)).toEqual(before);
      expect(before?.sourceId).toBe('alice');
    });

    it("should read the one flag of upstream's older records (`flag`)", async () => {
      await writeUpstream(upstreamText({ flags: undefined, flag: 'CTF{old}' }));
      expect((await store.loadInstance('chall-1', identity))?.flags).toEqual(['CTF{old}']);
    });

    it('should tell of records listings skip, and of them once readable again', async () => {
      const fail = vi.fn();
      const resolve = vi.fn();
      const reporting = new FsStateStore({ dir, unreadable: { fail, resolve } });
      await writeUpstream('{"identity": broken');
      expect(await reporting.listInstances('chall-1')).toEqual([]);
      const record = `chall/${md5('chall-1')}/instance/${identity}/info.json`;
      expect(fail).toHaveBeenCalledWith(record, expect.stringContaining('unreadable'));

      await writeFile(join(instDir('chall-1', identity), 'info.json'), upstreamText());
      expect(await reporting.listInstances('chall-1')).toHaveLength(1);
      expect(resolve).toHaveBeenCalledWith(record);
    });
  });
});

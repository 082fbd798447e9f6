import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Challenge } from '../../src/shared/domain/challenge';
import type { Instance } from '../../src/shared/domain/instance';
import type { StateStore } from '../../src/shared/ports/state-store.port';
import { aChallenge, anIdentity, anInstance, aPooledInstance } from '../support/builders';

/** A store under test and how to dispose of it after each test. */
export interface StoreUnderTest {
  store: StateStore;
  cleanup: () => Promise<void>;
}

const byId = (a: Challenge, b: Challenge): number => a.id.localeCompare(b.id);
const byIdentity = (a: Instance, b: Instance): number => a.identity.localeCompare(b.identity);

/**
 * The promised behaviour of {@link StateStore}, for every adapter (FsStateStore, and the
 * InMemoryStateStore double, which must behave the same for service tests to mean anything).
 */
export function stateStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`${name} (StateStore contract)`, () => {
    let subject: StoreUnderTest;
    let store: StateStore;

    beforeEach(async () => {
      subject = await makeStore();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe('saveChallenge', () => {
      it('should round-trip every field when all are set', async () => {
        const challenge = aChallenge({
          timeoutMs: 600_000,
          until: new Date('2026-03-04T05:06:07.089Z'),
          additional: { region: 'eu', 'a.b': 'c d' },
          min: 2,
          max: 10,
        });
        await store.saveChallenge(challenge);
        expect(await store.loadChallenge(challenge.id)).toStrictEqual(challenge);
      });

      it('should keep absent optional fields absent when none are set', async () => {
        const challenge = aChallenge();
        await store.saveChallenge(challenge);
        const loaded = await store.loadChallenge(challenge.id);
        expect(loaded).toStrictEqual(challenge);
        expect(loaded).not.toHaveProperty('timeoutMs');
        expect(loaded).not.toHaveProperty('until');
      });

      it('should keep millisecond precision when until has milliseconds', async () => {
        const until = new Date('2026-12-31T23:59:59.001Z');
        await store.saveChallenge(aChallenge({ until }));
        expect((await store.loadChallenge('chall-1'))?.until?.getTime()).toBe(until.getTime());
      });

      it('should keep a timeout longer than 2^53 nanoseconds when it is whole milliseconds', async () => {
        const timeoutMs = 365 * 24 * 3_600_000;
        await store.saveChallenge(aChallenge({ timeoutMs }));
        expect((await store.loadChallenge('chall-1'))?.timeoutMs).toBe(timeoutMs);
      });

      it('should replace the record when saved again', async () => {
        await store.saveChallenge(aChallenge({ timeoutMs: 1_000, min: 1, max: 2 }));
        const updated = aChallenge({ scenario: 'localhost:5000/other:v2', min: 0, max: 0 });
        await store.saveChallenge(updated);
        expect(await store.loadChallenge('chall-1')).toStrictEqual(updated);
      });

      it('should round-trip ids that are not path-safe when ids hold slashes and dots', async () => {
        const ids = ['../../etc/passwd', 'a/b', '.', 'é 🚩', ''];
        for (const id of ids) await store.saveChallenge(aChallenge({ id }));
        for (const id of ids) expect((await store.loadChallenge(id))?.id).toBe(id);
        expect((await store.listChallenges()).map((c) => c.id).sort()).toEqual([...ids].sort());
      });

      it('should not be changed when the caller mutates the saved or loaded object', async () => {
        const challenge = aChallenge({ additional: { k: 'v' }, until: new Date(0) });
        await store.saveChallenge(challenge);
        challenge.additional.k = 'mutated';
        challenge.until?.setTime(1);
        const loaded = await store.loadChallenge('chall-1');
        expect(loaded?.additional).toEqual({ k: 'v' });
        expect(loaded?.until?.getTime()).toBe(0);
        if (loaded) loaded.additional.k = 'mutated again';
        expect((await store.loadChallenge('chall-1'))?.additional).toEqual({ k: 'v' });
      });
    });

    describe('loadChallenge', () => {
      it('should return undefined when the challenge does not exist', async () => {
        expect(await store.loadChallenge('missing')).toBeUndefined();
      });
    });

    describe('deleteChallenge', () => {
      it('should remove the challenge when it exists', async () => {
        await store.saveChallenge(aChallenge());
        await store.deleteChallenge('chall-1');
        expect(await store.loadChallenge('chall-1')).toBeUndefined();
        expect(await store.listChallenges()).toEqual([]);
      });

      it('should succeed when the challenge does not exist or is deleted twice', async () => {
        await expect(store.deleteChallenge('missing')).resolves.toBeUndefined();
        await store.saveChallenge(aChallenge());
        await store.deleteChallenge('chall-1');
        await expect(store.deleteChallenge('chall-1')).resolves.toBeUndefined();
      });

      it('should remove the instances of the challenge when it has some', async () => {
        await store.saveChallenge(aChallenge());
        await store.saveInstance(anInstance());
        await store.saveInstance(aPooledInstance({ identity: anIdentity(2) }));
        await store.deleteChallenge('chall-1');
        expect(await store.listInstances('chall-1')).toEqual([]);
        expect(await store.findClaimed('chall-1', 'source-1')).toBeUndefined();
      });

      it('should leave other challenges alone when one is deleted', async () => {
        await store.saveChallenge(aChallenge({ id: 'a' }));
        await store.saveChallenge(aChallenge({ id: 'b' }));
        await store.saveInstance(anInstance({ challengeId: 'b' }));
        await store.deleteChallenge('a');
        expect((await store.listChallenges()).map((c) => c.id)).toEqual(['b']);
        expect(await store.listInstances('b')).toHaveLength(1);
      });
    });

    describe('listChallenges', () => {
      it('should return an empty list when there is no challenge', async () => {
        expect(await store.listChallenges()).toEqual([]);
      });

      it('should return every saved challenge when there are several', async () => {
        const challenges = [
          aChallenge({ id: 'a' }),
          aChallenge({ id: 'b', timeoutMs: 5_000 }),
          aChallenge({ id: 'c', until: new Date('2027-01-01T00:00:00Z'), min: 1, max: 3 }),
        ];
        for (const c of challenges) await store.saveChallenge(c);
        expect((await store.listChallenges()).sort(byId)).toStrictEqual(challenges);
      });
    });

    describe('saveInstance', () => {
      it('should round-trip every field when the instance is claimed', async () => {
        const instance = anInstance({
          since: new Date('2026-01-02T03:04:05.678Z'),
          lastRenew: new Date('2026-01-02T04:04:05.999Z'),
          until: new Date('2026-01-02T05:04:05.001Z'),
          flags: ['CTF{a}', 'CTF{b}'],
          additional: { k: 'v' },
          connectionInfo: 'https://x.example:8443',
        });
        await store.saveInstance(instance);
        expect(await store.loadInstance(instance.challengeId, instance.identity)).toStrictEqual(
          instance,
        );
      });

      it.each([
        [{ operation: 'recreate' as const }],
        [{ operation: 'blue_green' as const, identity: 'fedcba9876543210' }],
      ])('should round-trip a pending redeployment %o when one is recorded', async (pending) => {
        const instance = anInstance({ pending });
        await store.saveInstance(instance);
        expect(await store.loadInstance(instance.challengeId, instance.identity)).toStrictEqual(
          instance,
        );
      });

      it('should round-trip readiness probes when the scenario exports some, pooled or claimed', async () => {
        const readiness = ['tcp://127.0.0.1:4242', 'http://web.internal/health'];
        for (const instance of [
          anInstance({ readiness }),
          aPooledInstance({ identity: '0123456789abcdef', readiness }),
        ]) {
          await store.saveInstance(instance);
          expect(await store.loadInstance(instance.challengeId, instance.identity)).toStrictEqual(
            instance,
          );
        }
        const bare = aPooledInstance({ identity: 'fedcba9876543210' });
        await store.saveInstance(bare);
        expect(await store.loadInstance(bare.challengeId, bare.identity)).not.toHaveProperty(
          'readiness',
        );
      });

      it('should keep sourceId, until, flags and additional empty when the instance is pooled and bare', async () => {
        const pooled = aPooledInstance({ flags: [], additional: {} });
        await store.saveInstance(pooled);
        const loaded = await store.loadInstance(pooled.challengeId, pooled.identity);
        expect(loaded).toStrictEqual(pooled);
        expect(loaded).not.toHaveProperty('sourceId');
        expect(loaded).not.toHaveProperty('until');
      });

      it('should replace the record when saved again', async () => {
        await store.saveInstance(anInstance());
        const renewed = anInstance({
          lastRenew: new Date('2026-01-01T01:00:00Z'),
          until: new Date('2026-01-01T02:00:00Z'),
          connectionInfo: 'changed',
        });
        await store.saveInstance(renewed);
        expect(await store.loadInstance('chall-1', renewed.identity)).toStrictEqual(renewed);
      });

      it('should keep an existing claim when a record without sourceId is saved', async () => {
        await store.saveInstance(aPooledInstance());
        expect(await store.claim('chall-1', anIdentity(1), 'player')).toBe(true);
        // A stale pooled copy written after the claim (for example by a pool update).
        await store.saveInstance(aPooledInstance({ connectionInfo: 'updated' }));
        const loaded = await store.loadInstance('chall-1', anIdentity(1));
        expect(loaded?.sourceId).toBe('player');
        expect(loaded?.connectionInfo).toBe('updated');
      });

      it('should not be changed when the caller mutates the saved or loaded object', async () => {
        const instance = anInstance({ flags: ['f'], additional: { k: 'v' } });
        await store.saveInstance(instance);
        instance.flags.push('mutated');
        instance.additional.k = 'mutated';
        instance.since.setTime(0);
        const loaded = await store.loadInstance('chall-1', instance.identity);
        expect(loaded).toStrictEqual(anInstance({ flags: ['f'], additional: { k: 'v' } }));
        loaded?.flags.push('again');
        expect((await store.loadInstance('chall-1', instance.identity))?.flags).toEqual(['f']);
      });

      it('should reject when the identity is not 16 lowercase hex characters', async () => {
        for (const identity of ['../x', '../../../../tmp/x', 'ABCDEF0123456789', '0123', '']) {
          await expect(store.saveInstance(anInstance({ identity }))).rejects.toThrow();
        }
      });
    });

    describe('loadInstance', () => {
      it('should return undefined when the instance or its challenge does not exist', async () => {
        expect(await store.loadInstance('missing', anIdentity(1))).toBeUndefined();
        await store.saveInstance(anInstance());
        expect(await store.loadInstance('chall-1', anIdentity(2))).toBeUndefined();
        expect(await store.loadInstance('chall-2', anIdentity(1))).toBeUndefined();
      });

      it('should reject when the identity would escape the store', async () => {
        await expect(store.loadInstance('chall-1', '../x')).rejects.toThrow();
      });
    });

    describe('deleteInstance', () => {
      it('should remove the instance and its claim when it exists', async () => {
        await store.saveInstance(anInstance());
        await store.deleteInstance('chall-1', anIdentity(1));
        expect(await store.loadInstance('chall-1', anIdentity(1))).toBeUndefined();
        expect(await store.findClaimed('chall-1', 'source-1')).toBeUndefined();
        expect(await store.listInstances('chall-1')).toEqual([]);
      });

      it('should succeed when the instance does not exist or is deleted twice', async () => {
        await expect(store.deleteInstance('missing', anIdentity(1))).resolves.toBeUndefined();
        await store.saveInstance(anInstance());
        await store.deleteInstance('chall-1', anIdentity(1));
        await expect(store.deleteInstance('chall-1', anIdentity(1))).resolves.toBeUndefined();
      });

      it('should keep the challenge and the other instances when one instance is deleted', async () => {
        await store.saveChallenge(aChallenge());
        await store.saveInstance(anInstance());
        await store.saveInstance(aPooledInstance({ identity: anIdentity(2) }));
        await store.deleteInstance('chall-1', anIdentity(1));
        expect(await store.loadChallenge('chall-1')).toBeDefined();
        expect((await store.listInstances('chall-1')).map((i) => i.identity)).toEqual([
          anIdentity(2),
        ]);
      });

      it('should reject when the identity would escape the store', async () => {
        await expect(store.deleteInstance('chall-1', '../x')).rejects.toThrow();
      });
    });

    describe('listInstances', () => {
      it('should return an empty list when the challenge has no instance or does not exist', async () => {
        expect(await store.listInstances('missing')).toEqual([]);
        await store.saveChallenge(aChallenge());
        expect(await store.listInstances('chall-1')).toEqual([]);
      });

      it('should return claimed and pooled instances of that challenge only', async () => {
        const claimed = anInstance();
        const pooled = aPooledInstance({ identity: anIdentity(2) });
        await store.saveInstance(claimed);
        await store.saveInstance(pooled);
        await store.saveInstance(anInstance({ challengeId: 'other', identity: anIdentity(3) }));
        expect((await store.listInstances('chall-1')).sort(byIdentity)).toStrictEqual([
          claimed,
          pooled,
        ]);
      });
    });

    describe('listInstancesOf', () => {
      it("should give each challenge's instances as listInstances does, in the order asked", async () => {
        const claimed = anInstance();
        const pooled = aPooledInstance({ identity: anIdentity(2) });
        const other = anInstance({ challengeId: 'other', identity: anIdentity(3), sourceId: 'b' });
        for (const instance of [claimed, pooled, other]) await store.saveInstance(instance);
        await store.saveChallenge(aChallenge({ id: 'empty' }));

        const lists = await store.listInstancesOf(['other', 'missing', 'chall-1', 'empty']);

        expect(lists.map((list) => [...list].sort(byIdentity))).toStrictEqual([
          [other],
          [],
          [claimed, pooled],
          [],
        ]);
        expect(await store.listInstancesOf([])).toEqual([]);
      });
    });

    describe('findClaimed', () => {
      it('should return the instance of the source when the source has claimed one', async () => {
        await store.saveInstance(aPooledInstance({ identity: anIdentity(1) }));
        await store.saveInstance(anInstance({ identity: anIdentity(2), sourceId: 'alice' }));
        await store.saveInstance(anInstance({ identity: anIdentity(3), sourceId: 'bob' }));
        expect((await store.findClaimed('chall-1', 'bob'))?.identity).toBe(anIdentity(3));
        expect(await store.findClaimed('chall-1', 'alice')).toStrictEqual(
          anInstance({ identity: anIdentity(2), sourceId: 'alice' }),
        );
      });

      it('should return undefined when the source has no instance of that challenge', async () => {
        await store.saveInstance(aPooledInstance());
        await store.saveInstance(anInstance({ challengeId: 'other', sourceId: 'alice' }));
        expect(await store.findClaimed('chall-1', 'alice')).toBeUndefined();
        expect(await store.findClaimed('missing', 'alice')).toBeUndefined();
      });

      it('should match the source id exactly when ids differ only by case or whitespace', async () => {
        await store.saveInstance(anInstance({ sourceId: 'Team 1' }));
        expect(await store.findClaimed('chall-1', 'team 1')).toBeUndefined();
        expect(await store.findClaimed('chall-1', 'Team 1 ')).toBeUndefined();
        expect((await store.findClaimed('chall-1', 'Team 1'))?.sourceId).toBe('Team 1');
      });
    });

    describe('findClaimedOfSource', () => {
      /** What QueryInstance gave before the method: findClaimed over listChallenges. */
      async function perChallenge(sourceId: string): Promise<Instance[]> {
        const found: Instance[] = [];
        for (const challenge of await store.listChallenges()) {
          const instance = await store.findClaimed(challenge.id, sourceId);
          if (instance !== undefined) found.push(instance);
        }
        return found;
      }

      it("should return the source's instance of each challenge in the order of listChallenges", async () => {
        for (const id of ['c', 'a', 'b', 'd']) await store.saveChallenge(aChallenge({ id }));
        await store.saveInstance(
          anInstance({ challengeId: 'a', identity: anIdentity(1), sourceId: 'alice' }),
        );
        await store.saveInstance(
          anInstance({ challengeId: 'b', identity: anIdentity(2), sourceId: 'bob' }),
        );
        await store.saveInstance(
          anInstance({ challengeId: 'c', identity: anIdentity(3), sourceId: 'alice' }),
        );
        await store.saveInstance(aPooledInstance({ challengeId: 'd', identity: anIdentity(4) }));
        const found = await store.findClaimedOfSource('alice');
        expect(found.map((i) => i.challengeId).sort()).toEqual(['a', 'c']);
        expect(found).toStrictEqual(await perChallenge('alice'));
        expect(await store.findClaimedOfSource('bob')).toStrictEqual([
          anInstance({ challengeId: 'b', identity: anIdentity(2), sourceId: 'bob' }),
        ]);
      });

      it('should return nothing when the source has no instance or holds only a pooled one', async () => {
        await store.saveChallenge(aChallenge());
        await store.saveInstance(aPooledInstance());
        expect(await store.findClaimedOfSource('alice')).toEqual([]);
      });

      it('should follow claims and deletions when instances are claimed and deleted', async () => {
        for (const id of ['a', 'b']) await store.saveChallenge(aChallenge({ id }));
        await store.saveInstance(aPooledInstance({ challengeId: 'a', identity: anIdentity(1) }));
        await store.saveInstance(
          anInstance({ challengeId: 'b', identity: anIdentity(2), sourceId: 'alice' }),
        );
        expect((await store.findClaimedOfSource('alice')).map((i) => i.identity)).toEqual([
          anIdentity(2),
        ]);
        expect(await store.claim('a', anIdentity(1), 'alice')).toBe(true);
        await store.deleteInstance('b', anIdentity(2));
        expect(await store.findClaimedOfSource('alice')).toStrictEqual([
          { ...aPooledInstance({ challengeId: 'a', identity: anIdentity(1) }), sourceId: 'alice' },
        ]);
        await store.deleteChallenge('a');
        expect(await store.findClaimedOfSource('alice')).toEqual([]);
      });

      it('should match the source id exactly when ids differ only by case or whitespace', async () => {
        await store.saveChallenge(aChallenge());
        await store.saveInstance(anInstance({ sourceId: 'Team 1' }));
        expect(await store.findClaimedOfSource('team 1')).toEqual([]);
        expect(await store.findClaimedOfSource('Team 1 ')).toEqual([]);
        expect((await store.findClaimedOfSource('Team 1')).map((i) => i.sourceId)).toEqual([
          'Team 1',
        ]);
      });
    });

    describe('poolState', () => {
      it('should list no instance when the challenge has none or does not exist', async () => {
        await store.saveChallenge(aChallenge());
        expect(await store.poolState('chall-1')).toStrictEqual({ pooled: [], claimed: 0 });
        expect(await store.poolState('missing')).toStrictEqual({ pooled: [], claimed: 0 });
      });

      it('should follow claims and deletions when instances are pooled, claimed and deleted', async () => {
        await store.saveChallenge(aChallenge());
        await store.saveInstance(aPooledInstance({ identity: anIdentity(2) }));
        await store.saveInstance(aPooledInstance({ identity: anIdentity(1) }));
        await store.saveInstance(anInstance({ identity: anIdentity(3), sourceId: 'alice' }));
        await store.saveInstance(
          aPooledInstance({ challengeId: 'other', identity: anIdentity(4) }),
        );
        expect(await store.poolState('chall-1')).toStrictEqual({
          pooled: [anIdentity(1), anIdentity(2)],
          claimed: 1,
        });
        expect(await store.claim('chall-1', anIdentity(2), 'bob')).toBe(true);
        expect(await store.poolState('chall-1')).toStrictEqual({
          pooled: [anIdentity(1)],
          claimed: 2,
        });
        await store.deleteInstance('chall-1', anIdentity(3));
        await store.deleteInstance('chall-1', anIdentity(1));
        expect(await store.poolState('chall-1')).toStrictEqual({ pooled: [], claimed: 1 });
      });
    });

    describe('claim', () => {
      it("should find the source's new instance only when its claimed one was deleted and another claimed", async () => {
        await store.saveChallenge(aChallenge());
        await store.saveInstance(anInstance({ identity: anIdentity(1), sourceId: 'alice' }));
        await store.saveInstance(aPooledInstance({ identity: anIdentity(2) }));
        await store.deleteInstance('chall-1', anIdentity(1));
        expect(await store.findClaimed('chall-1', 'alice')).toBeUndefined();
        expect(await store.claim('chall-1', anIdentity(2), 'alice')).toBe(true);
        expect((await store.findClaimed('chall-1', 'alice'))?.identity).toBe(anIdentity(2));
      });

      it('should give a pooled instance to the source when nobody claimed it', async () => {
        await store.saveInstance(aPooledInstance());
        expect(await store.claim('chall-1', anIdentity(1), 'alice')).toBe(true);
        expect((await store.loadInstance('chall-1', anIdentity(1)))?.sourceId).toBe('alice');
        expect((await store.findClaimed('chall-1', 'alice'))?.identity).toBe(anIdentity(1));
      });

      it('should return false and keep the first claimant when the instance is already claimed', async () => {
        await store.saveInstance(aPooledInstance());
        expect(await store.claim('chall-1', anIdentity(1), 'alice')).toBe(true);
        expect(await store.claim('chall-1', anIdentity(1), 'bob')).toBe(false);
        expect(await store.claim('chall-1', anIdentity(1), 'alice')).toBe(false);
        expect((await store.loadInstance('chall-1', anIdentity(1)))?.sourceId).toBe('alice');
        expect(await store.findClaimed('chall-1', 'bob')).toBeUndefined();
      });

      it('should return false when the instance was saved claimed', async () => {
        await store.saveInstance(anInstance({ sourceId: 'alice' }));
        expect(await store.claim('chall-1', anIdentity(1), 'bob')).toBe(false);
      });

      it('should return false when the instance does not exist', async () => {
        expect(await store.claim('chall-1', anIdentity(9), 'alice')).toBe(false);
        expect(await store.loadInstance('chall-1', anIdentity(9))).toBeUndefined();
      });

      it('should let exactly one of 20 concurrent claims win when they race for one instance', async () => {
        await store.saveInstance(aPooledInstance());
        const sources = Array.from({ length: 20 }, (_, i) => `source-${i}`);
        const results = await Promise.all(
          sources.map((s) => store.claim('chall-1', anIdentity(1), s)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = sources[results.indexOf(true)];
        expect((await store.loadInstance('chall-1', anIdentity(1)))?.sourceId).toBe(winner);
      });

      it('should reject when the identity would escape the store', async () => {
        await expect(store.claim('chall-1', '../x', 'alice')).rejects.toThrow();
      });
    });

    describe('claim with its save', () => {
      const LATER = new Date('2026-05-06T07:08:09.010Z');
      const asAlice = (identity = anIdentity(1)): Instance =>
        anInstance({ identity, sourceId: 'alice', lastRenew: LATER, until: LATER });
      /** Alice's claim of instance 1 with its save, and how often its work alongside ran. */
      const aliceClaimCounting = (): { claim: () => Promise<boolean>; alongside: () => number } => {
        let calls = 0;
        return {
          claim: () =>
            store.claim('chall-1', anIdentity(1), 'alice', {
              record: { ...asAlice(), sourceId: 'alice' },
              alongside: () => {
                calls += 1;
                return Promise.resolve();
              },
            }),
          alongside: () => calls,
        };
      };

      it('should save the record as claimed and run the work alongside when the claim wins', async () => {
        await store.saveInstance(aPooledInstance());
        const { claim, alongside } = aliceClaimCounting();
        expect(await claim()).toBe(true);
        expect(alongside()).toBe(1);
        expect(await store.loadInstance('chall-1', anIdentity(1))).toEqual(asAlice());
        expect(await store.findClaimed('chall-1', 'alice')).toEqual(asAlice());
        expect(await store.poolState('chall-1')).toEqual({ pooled: [], claimed: 1 });
      });

      it('should change no record and run nothing alongside when the claim loses', async () => {
        await store.saveInstance(aPooledInstance());
        expect(await store.claim('chall-1', anIdentity(1), 'bob')).toBe(true);
        const before = await store.loadInstance('chall-1', anIdentity(1));
        const { claim, alongside } = aliceClaimCounting();
        expect(await claim()).toBe(false);
        expect(alongside()).toBe(0);
        expect(await store.loadInstance('chall-1', anIdentity(1))).toEqual(before);
        expect(await store.findClaimed('chall-1', 'alice')).toBeUndefined();
      });

      it('should return false and write nothing when the instance does not exist', async () => {
        const won = await store.claim('chall-1', anIdentity(9), 'alice', {
          record: { ...asAlice(anIdentity(9)), sourceId: 'alice' },
        });
        expect(won).toBe(false);
        expect(await store.loadInstance('chall-1', anIdentity(9))).toBeUndefined();
        expect(await store.listInstances('chall-1')).toEqual([]);
      });

      it("should save exactly the winner's record when 20 claims with saves race for one instance", async () => {
        await store.saveInstance(aPooledInstance());
        const sources = Array.from({ length: 20 }, (_, i) => `source-${i}`);
        const results = await Promise.all(
          sources.map((sourceId) =>
            store.claim('chall-1', anIdentity(1), sourceId, {
              record: { ...anInstance({ sourceId, connectionInfo: sourceId }), sourceId },
            }),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = sources[results.indexOf(true)];
        const saved = await store.loadInstance('chall-1', anIdentity(1));
        expect(saved?.sourceId).toBe(winner);
        expect(saved?.connectionInfo).toBe(winner);
      });

      it('should reject once won when the work alongside fails, the claim and record kept', async () => {
        await store.saveInstance(aPooledInstance());
        const claiming = store.claim('chall-1', anIdentity(1), 'alice', {
          record: { ...asAlice(), sourceId: 'alice' },
          alongside: () => Promise.reject(new Error('disk full')),
        });
        await expect(claiming).rejects.toThrow('disk full');
        expect(await store.loadInstance('chall-1', anIdentity(1))).toEqual(asAlice());
      });
    });

    describe('creation marks', () => {
      it('should show a creation of one source as underway until it ends, and no other', async () => {
        await store.saveChallenge(aChallenge());
        expect(await store.creationUnderway('chall-1', 'alice')).toBe(false);
        const mark = await store.beginCreation('chall-1', 'alice');
        expect(await store.creationUnderway('chall-1', 'alice')).toBe(true);
        expect(await store.creationUnderway('chall-1', 'bob')).toBe(false);
        expect(await store.findClaimed('chall-1', 'alice')).toBeUndefined();
        await mark.end();
        expect(await store.creationUnderway('chall-1', 'alice')).toBe(false);
      });
    });
  });
}

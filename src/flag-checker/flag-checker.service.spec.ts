import { beforeEach, describe, expect, it, vi } from 'vitest';
import { T0 } from '../../test/support/builders';
import { FixedClock } from '../../test/support/fakes/fixed-clock';
import { InMemoryEventJournal } from '../../test/support/fakes/in-memory-event-journal';
import { AppConfig } from '../config';
import type { Claimed, Instance } from '../shared/domain/instance';
import { FlagCheckRateLimitedError } from '../shared/errors';
import { FlagRecords, type StagedWrite } from '../shared/ports';
import { FlagCheckerService } from './flag-checker.service';

/** Flags by source, in clear (the real records keep hashes; the service never sees either). */
class FakeFlagRecords extends FlagRecords {
  readonly bySource = new Map<string, { challengeId: string; flags: string[] }>();
  stage(instance: Claimed<Instance>): Promise<StagedWrite> {
    return Promise.resolve({
      commit: () => {
        this.bySource.set(instance.sourceId, {
          challengeId: instance.challengeId,
          flags: instance.flags,
        });
        return Promise.resolve();
      },
      discard: () => Promise.resolve(),
    });
  }
  markDeleted(): Promise<void> {
    return Promise.resolve();
  }
  removeChallenge(): Promise<void> {
    return Promise.resolve();
  }
  sourcesOf(challengeId: string, flag: string): Promise<string[]> {
    return Promise.resolve(
      [...this.bySource]
        .filter(([, r]) => r.challengeId === challengeId && r.flags.includes(flag))
        .map(([source]) => source)
        .sort(),
    );
  }
  purge(): Promise<number> {
    return Promise.resolve(0);
  }
}

describe('FlagCheckerService', () => {
  let clock: FixedClock;
  let checker: FlagCheckerService;
  let events: InMemoryEventJournal;

  beforeEach(() => {
    clock = new FixedClock(T0);
    const records = new FakeFlagRecords();
    records.bySource.set('team-a', { challengeId: 'chall-1', flags: ['CTF{a}'] });
    records.bySource.set('team-b', { challengeId: 'chall-1', flags: ['CTF{b}'] });
    const config = AppConfig.fromEnv({ FLAG_CHECK_LIMIT: '3', FLAG_CHECK_WINDOW: '1m' });
    events = new InMemoryEventJournal(clock);
    checker = new FlagCheckerService(records, clock, config, events);
  });

  it('should answer valid for the source’s own flag, without reporting sharing', async () => {
    const onSharing = vi.spyOn(checker, 'onSharing');
    expect(
      await checker.check({ challengeId: 'chall-1', sourceId: 'team-a', flag: 'CTF{a}' }),
    ).toEqual({ valid: true });
    expect(onSharing).not.toHaveBeenCalled();
    expect(events.published()).toEqual([]);
  });

  it('should answer sharedFrom and report the sharing when the flag is another source’s', async () => {
    const onSharing = vi.spyOn(checker, 'onSharing');
    expect(
      await checker.check({ challengeId: 'chall-1', sourceId: 'team-a', flag: 'CTF{b}' }),
    ).toEqual({ valid: false, sharedFrom: 'team-b' });
    expect(onSharing).toHaveBeenCalledWith({
      challengeId: 'chall-1',
      sourceId: 'team-a',
      sharedFrom: 'team-b',
      at: T0,
    });
    expect(events.published()).toEqual([
      { type: 'flag.shared', challengeId: 'chall-1', sourceId: 'team-a', sharedFrom: 'team-b' },
    ]);
  });

  it('should answer not valid, without sharedFrom, when nobody had the flag', async () => {
    expect(
      await checker.check({ challengeId: 'chall-1', sourceId: 'team-a', flag: 'CTF{nope}' }),
    ).toEqual({ valid: false });
  });

  it('should refuse a source past FLAG_CHECK_LIMIT checks in the window, others not, and allow it again in the next window', async () => {
    const check = (sourceId: string) =>
      checker.check({ challengeId: 'chall-1', sourceId, flag: 'CTF{a}' });
    for (let k = 0; k < 3; k++) await check('team-a');
    const refused = await check('team-a').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(FlagCheckRateLimitedError);
    expect((refused as FlagCheckRateLimitedError).metadata).toEqual({
      source_id: 'team-a',
      retry_after: '60s',
    });
    expect(await check('team-b')).toEqual({ valid: false, sharedFrom: 'team-a' });
    clock.advance(60_000);
    expect(await check('team-a')).toEqual({ valid: true });
  });
});

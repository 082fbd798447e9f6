import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { aChallenge } from '../support/builders';
import {
  anUpdate,
  servicesUnderTest,
  within,
  type ServicesUnderTest,
} from '../support/services-under-test';

/**
 * A registry can be slow (a whole pull may take up to OCI_TRANSFER_TIMEOUT): no lock is held
 * while a scenario is pulled, and what was pulled is checked against the records under the lock.
 */

const V2 = 'localhost:5000/scenarios/chall-1:v2';
const WAIT = 5_000;

describe('scenario pulls and locks', () => {
  let sut: ServicesUnderTest;

  beforeEach(() => {
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    sut = servicesUnderTest();
  });
  afterEach(() => {
    sut.oci.releaseFetches();
    vi.restoreAllMocks();
  });

  it('should hold no lock while CreateChallenge pulls its scenario', async () => {
    sut.oci.holdFetches();
    const created = sut.challenges.create(aChallenge());
    await within(WAIT, sut.oci.whenFetchesHeld(1), 'for the pull');

    expect(sut.lock.activeKeys).toBe(0);
    sut.oci.releaseFetches();
    await created;
    expect(await sut.state.loadChallenge('chall-1')).toBeDefined();
  });

  it('should answer CHALLENGE_ALREADY_EXISTS when the id was taken while pulling', async () => {
    sut.oci.holdFetches();
    const created = sut.challenges.create(aChallenge());
    await within(WAIT, sut.oci.whenFetchesHeld(1), 'for the pull');
    await sut.state.saveChallenge(aChallenge({ scenario: V2 }));
    sut.oci.releaseFetches();

    await expect(created).rejects.toMatchObject({ reason: 'CHALLENGE_ALREADY_EXISTS' });
    expect((await sut.state.loadChallenge('chall-1'))?.scenario).toBe(V2);
  });

  it('should hold no lock while UpdateChallenge pulls the new scenario', async () => {
    const challenge = await sut.givenChallenge();
    sut.oci.push(V2);
    sut.oci.holdFetches();
    const updated = sut.challenges.update(
      anUpdate(challenge, { mask: new Set(['scenario']), scenario: V2 }),
    );
    await within(WAIT, sut.oci.whenFetchesHeld(1), 'for the pull');

    expect(sut.lock.activeKeys).toBe(0);
    sut.oci.releaseFetches();
    expect((await updated).scenario).toBe(V2);
    expect((await sut.state.loadChallenge('chall-1'))?.digest).toBe(sut.oci.digestOf(V2));
  });

  it('should hold no lock while CreateInstance pulls, and pass the recorded digest', async () => {
    const challenge = await sut.givenChallenge();
    sut.oci.holdFetches();
    const created = sut.instances.create({
      challengeId: 'chall-1',
      sourceId: 'source-1',
      additional: {},
    });
    await within(WAIT, sut.oci.whenFetchesHeld(1), 'for the pull');

    expect(sut.lock.activeKeys).toBe(0);
    expect(sut.oci.calls.at(-1)).toEqual({
      op: 'fetchScenario',
      reference: challenge.scenario,
      recordedDigest: challenge.digest,
    });
    sut.oci.releaseFetches();
    expect((await created).sourceId).toBe('source-1');
  });

  it('should end on the scenario the challenge names when an update moved it during the pull', async () => {
    await sut.givenChallenge();
    sut.oci.push(V2);
    sut.oci.holdFetches();
    const created = sut.instances.create({
      challengeId: 'chall-1',
      sourceId: 'source-1',
      additional: {},
    });
    await within(WAIT, sut.oci.whenFetchesHeld(1), 'for the pull');
    // The update's own pull is held too: it is the second one.
    const challenge = (await sut.state.loadChallenge('chall-1'))!;
    const updated = sut.challenges.update(
      anUpdate(challenge, { mask: new Set(['scenario']), scenario: V2 }),
    );
    await within(WAIT, sut.oci.whenFetchesHeld(2), 'for the update pull');
    sut.oci.releaseFetches();
    await updated;
    const instance = await created;

    const stack = [...sut.iac.stacks.values()].find((s) => s.identity === instance.identity);
    expect(stack?.scenarioReference).toBe(V2);
    expect(stack?.scenarioDigest).toBe(sut.oci.digestOf(V2));
  });
});

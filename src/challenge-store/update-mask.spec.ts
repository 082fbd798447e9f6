import { describe, expect, it } from 'vitest';
import { aChallenge } from '../../test/support/builders';
import type { Challenge } from '../shared/domain';
import type { UpdatablePath, UpdateChallengeInput } from './challenge-store.types';
import { applyUpdateMask, sameRecord } from './update-mask';

const UNTIL = new Date('2026-06-01T00:00:00.000Z');

/** A challenge with every updatable field set, so that what an update keeps shows. */
const old = (): Challenge =>
  aChallenge({ timeoutMs: 600_000, until: UNTIL, additional: { a: '1' }, min: 1, max: 4 });

/** An input with other values in every field; only the masked ones may be applied. */
function anInput(mask: UpdatablePath[] | undefined, overrides: Partial<UpdateChallengeInput> = {}) {
  return {
    id: 'chall-1',
    mask: mask === undefined ? undefined : new Set(mask),
    scenario: 'localhost:5000/scenarios/chall-1:v2',
    updateStrategy: 'update_in_place',
    timeoutMs: 60_000,
    until: new Date('2027-01-01T00:00:00.000Z'),
    additional: { b: '2' },
    min: 2,
    max: 3,
    ...overrides,
  } satisfies UpdateChallengeInput;
}

describe('applyUpdateMask', () => {
  it('should apply nothing without a mask, even when the scenario moved', () => {
    expect(applyUpdateMask(old(), anInput(undefined), true)).toEqual({
      next: old(),
      additionalChanged: false,
    });
  });

  it('should apply nothing with an empty mask', () => {
    expect(applyUpdateMask(old(), anInput([]), false).next).toEqual(old());
  });

  it('should apply every masked field and leave the others', () => {
    const { next, additionalChanged } = applyUpdateMask(
      old(),
      anInput(['timeout', 'additional', 'min']),
      false,
    );
    expect(next).toEqual({ ...old(), timeoutMs: 60_000, additional: { b: '2' }, min: 2 });
    expect(additionalChanged).toBe(true);
  });

  it('should apply until and max', () => {
    const { next } = applyUpdateMask(old(), anInput(['until', 'max']), false);
    expect(next).toEqual({ ...old(), until: new Date('2027-01-01T00:00:00.000Z'), max: 3 });
  });

  it('should clear a masked timeout or until given no value', () => {
    const { next } = applyUpdateMask(
      old(),
      anInput(['timeout', 'until'], { timeoutMs: undefined, until: undefined }),
      false,
    );
    expect(next).not.toHaveProperty('timeoutMs');
    expect(next).not.toHaveProperty('until');
  });

  it('should apply the scenario only when it moved to another digest', () => {
    const masked = anInput(['scenario']);
    expect(applyUpdateMask(old(), masked, false).next.scenario).toBe(old().scenario);
    expect(applyUpdateMask(old(), masked, true).next.scenario).toBe(masked.scenario);
  });

  it('should keep the scenario when the mask names it without a value', () => {
    const input = anInput(['scenario'], { scenario: undefined });
    expect(applyUpdateMask(old(), input, true).next.scenario).toBe(old().scenario);
  });

  it('should not count an equal additional as a change', () => {
    const input = anInput(['additional'], { additional: { a: '1' } });
    expect(applyUpdateMask(old(), input, false).additionalChanged).toBe(false);
  });

  it('should count an additional with a different value or key as a change', () => {
    const differing: Record<string, string>[] = [{ a: '2' }, { a: '1', b: '2' }, {}];
    for (const additional of differing) {
      const input = anInput(['additional'], { additional });
      const { next, additionalChanged } = applyUpdateMask(old(), input, false);
      expect(additionalChanged).toBe(true);
      expect(next.additional).toEqual(additional);
    }
  });

  it('should leave the old record and the input untouched', () => {
    const before = old();
    const input = anInput(['timeout', 'until', 'additional', 'min', 'max', 'scenario']);
    const { next } = applyUpdateMask(before, input, true);
    next.additional.c = '3';
    expect(before).toEqual(old());
    expect(input.additional).toEqual({ b: '2' });
  });
});

describe('sameRecord', () => {
  it('should hold when every masked field is applied with the values stored', () => {
    const stored = { ...old(), digest: 'sha256:' + 'a'.repeat(64) };
    const input = anInput(['timeout', 'until', 'additional', 'min', 'max', 'scenario'], {
      scenario: stored.scenario,
      timeoutMs: stored.timeoutMs,
      until: new Date(UNTIL.getTime()),
      additional: { a: '1' },
      min: stored.min,
      max: stored.max,
    });
    expect(sameRecord(stored, applyUpdateMask(stored, input, false).next)).toBe(true);
  });

  it('should not hold when any field differs, a new digest or a cleared field included', () => {
    const stored = { ...old(), digest: 'sha256:' + 'a'.repeat(64) };
    const withoutTimeout: Challenge = { ...stored };
    delete withoutTimeout.timeoutMs;
    const changes: Challenge[] = [
      { ...stored, scenario: 'localhost:5000/scenarios/chall-1:v2' },
      { ...stored, digest: 'sha256:' + 'b'.repeat(64) },
      withoutTimeout,
      { ...stored, timeoutMs: 1 },
      { ...stored, until: new Date(UNTIL.getTime() + 1) },
      { ...stored, additional: {} },
      { ...stored, min: 2 },
      { ...stored, max: 5 },
    ];
    for (const next of changes) expect(sameRecord(stored, next)).toBe(false);
  });
});

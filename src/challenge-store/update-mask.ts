import type { Challenge } from '../shared/domain';
import type { UpdatablePath, UpdateChallengeInput } from './challenge-store.types';

/** The record an update leads to, and what changed that the instances must follow. */
export interface MaskedUpdate {
  next: Challenge;
  additionalChanged: boolean;
}

const NO_PATHS: ReadonlySet<UpdatablePath> = new Set();

/** Whether two additional maps hold the same pairs (upstream: nil and `{}` are equal). */
export const sameAdditional = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length &&
  Object.entries(a).every(([k, v]) => b[k] === v);

/**
 * Whether an update led to the record it started from. Compared as JSON (dates as instants), so
 * that a field added to Challenge counts without being listed here; the same pairs in another
 * order count as a change, which costs only a write.
 */
export const sameRecord = (old: Challenge, next: Challenge): boolean =>
  JSON.stringify(old) === JSON.stringify(next);

/**
 * upstream: api/v1/challenge/update.go. Only the fields the mask names are applied (no mask:
 * none); `timeout` and `until` named without a value are cleared. `scenario` is applied only when
 * `scenarioChanged` (its digest moved: at the same digest the stored reference is kept, as
 * upstream does), and `additional` counts as changed only when it differs. `old` is not touched.
 */
export function applyUpdateMask(
  old: Challenge,
  input: UpdateChallengeInput,
  scenarioChanged: boolean,
): MaskedUpdate {
  const mask = input.mask ?? NO_PATHS;
  const next: Challenge = { ...old, additional: { ...old.additional } };
  if (scenarioChanged && mask.has('scenario') && input.scenario !== undefined)
    next.scenario = input.scenario;
  if (mask.has('timeout')) {
    if (input.timeoutMs === undefined) delete next.timeoutMs;
    else next.timeoutMs = input.timeoutMs;
  }
  if (mask.has('until')) {
    if (input.until === undefined) delete next.until;
    else next.until = input.until;
  }
  const additionalChanged =
    mask.has('additional') && !sameAdditional(old.additional, input.additional);
  if (additionalChanged) next.additional = { ...input.additional };
  if (mask.has('min')) next.min = input.min;
  if (mask.has('max')) next.max = input.max;
  return { next, additionalChanged };
}

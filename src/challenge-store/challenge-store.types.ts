import type { Challenge, Instance, UpdateStrategy } from '../shared/domain';

export type { UpdateStrategy };

/** A challenge as the API returns it: the record plus its claimed instances (pooled ones hidden). */
export interface ChallengeView extends Challenge {
  instances: Instance[];
}

export type CreateChallengeInput = Challenge;

/** Fields of a challenge an update mask may name (JSON names, as in the wire mask). */
export const UPDATABLE_PATHS = [
  'scenario',
  'timeout',
  'until',
  'additional',
  'min',
  'max',
] as const;
export type UpdatablePath = (typeof UPDATABLE_PATHS)[number];

export interface UpdateChallengeInput {
  id: string;
  /**
   * The fields to apply. `undefined` = no mask sent: nothing is applied, but instances' `until`
   * are recomputed and the pool rebalanced, as upstream does.
   */
  mask: ReadonlySet<UpdatablePath> | undefined;
  scenario?: string;
  updateStrategy: UpdateStrategy;
  timeoutMs?: number;
  until?: Date;
  additional: Record<string, string>;
  min: number;
  max: number;
}

/**
 * Bounds of the pooler's work: the largest pool a challenge may ask for, and how many spin-ups
 * of all challenges run at once (the others wait in line, challenges taking turns).
 */
export class PoolLimits {
  constructor(
    readonly maxSize = 100,
    readonly spinUpConcurrency = 1,
  ) {}
}

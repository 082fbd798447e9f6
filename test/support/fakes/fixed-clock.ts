import { Clock } from '../../../src/shared/ports/clock.port';
import { T0 } from '../builders';

/** A Clock that moves only when a test says so. */
export class FixedClock implements Clock {
  private current: number;

  constructor(start: Date = T0) {
    this.current = start.getTime();
  }

  /** A copy, so callers cannot move the clock by mutating the Date. */
  now(): Date {
    return new Date(this.current);
  }

  set(date: Date): void {
    this.current = date.getTime();
  }

  advance(ms: number): void {
    this.current += ms;
  }
}

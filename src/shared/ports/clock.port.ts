/** The current time; a port only so that expiry rules are testable with a fixed clock. */
export abstract class Clock {
  abstract now(): Date;
}

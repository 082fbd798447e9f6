import { HealthIndicator } from './ports/health-indicator.port';

/**
 * Records found under DIR that could not be taken over (an upstream chall-manager's that failed
 * to import, or any record too damaged to load), by record path relative to DIR. They are kept
 * on disk and listed here, and in `/healthcheck`, until a later pass succeeds with them: an
 * operator switching from upstream never loses an instance silently.
 */
export class AdoptionReport {
  private readonly problems = new Map<string, string>();

  fail(record: string, reason: string): void {
    this.problems.set(record, reason);
  }

  resolve(record: string): void {
    this.problems.delete(record);
  }

  /** `record: reason` lines, sorted. */
  list(): string[] {
    return [...this.problems.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([r, why]) => `${r}: ${why}`);
  }
}

/**
 * `/healthcheck` entry `adoption`: fails, without making the service unavailable, while records
 * are listed by the {@link AdoptionReport}; the message names each with its reason.
 */
export class AdoptionIndicator extends HealthIndicator {
  readonly name = 'adoption';
  override readonly critical = false;

  constructor(private readonly report: AdoptionReport) {
    super();
  }

  check(): Promise<void> {
    const problems = this.report.list();
    if (problems.length === 0) return Promise.resolve();
    return Promise.reject(
      new Error(
        `${problems.length} record(s) under DIR could not be taken over (kept as they are): ${problems.join('; ')}`,
      ),
    );
  }
}

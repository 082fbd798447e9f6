import { Injectable, Logger } from '@nestjs/common';
import { Span } from 'nestjs-otel/lib/tracing/decorators/span';
import { AppConfig } from '../config';
import { FlagCheckRateLimitedError } from '../shared/errors';
import { Clock, EventPublisher, FlagRecords } from '../shared/ports';
import { ATTR } from '../shared/telemetry';
import type { FlagCheckInput, FlagCheckResult, FlagSharing } from './flag-checker.types';
import { FixedWindowRateLimiter } from './rate-limiter';

/**
 * Checks a flag a source submits against the flags of the challenge's instances, live or deleted
 * within FLAG_RETENTION (the records, see FlagRecords): valid when one of the source's own had
 * it; when another source's had it, the flag was shared: {@link onSharing} logs it and publishes a
 * `flag.shared` event.
 * The flag is never logged, traced or stored: only its keyed hash is compared.
 */
@Injectable()
export class FlagCheckerService {
  private readonly logger = new Logger(FlagCheckerService.name);
  private readonly limiter: FixedWindowRateLimiter;

  constructor(
    private readonly flags: FlagRecords,
    private readonly clock: Clock,
    config: AppConfig,
    private readonly events: EventPublisher,
  ) {
    this.limiter = new FixedWindowRateLimiter(config.flags.checkLimit, config.flags.checkWindowMs);
  }

  /** @throws FlagCheckRateLimitedError past FLAG_CHECK_LIMIT checks of the source per window. */
  @Span('check-flag', (input: FlagCheckInput) => ({
    attributes: { [ATTR.challengeId]: input.challengeId, [ATTR.sourceId]: input.sourceId },
  }))
  async check(input: FlagCheckInput): Promise<FlagCheckResult> {
    const now = this.clock.now();
    const wait = this.limiter.take(input.sourceId, now.getTime());
    if (wait > 0) throw new FlagCheckRateLimitedError(input.sourceId, wait);
    const sources = await this.flags.sourcesOf(input.challengeId, input.flag, now);
    if (sources.includes(input.sourceId)) return { valid: true };
    const sharedFrom = sources[0];
    if (sharedFrom === undefined) return { valid: false };
    await this.onSharing({
      challengeId: input.challengeId,
      sourceId: input.sourceId,
      sharedFrom,
      at: now,
    });
    return { valid: false, sharedFrom };
  }

  /**
   * Reports flag sharing: a warning for the organisers and a `flag.shared` event for the
   * platform (ids only). Never fails the check: the answer does not depend on it, and publishing
   * never rejects. Awaited, so the event is in the journal when the check answers.
   */
  async onSharing(event: FlagSharing): Promise<void> {
    this.logger.warn(
      `flag sharing: source ${event.sourceId} submitted a flag of source ${event.sharedFrom} for challenge ${event.challengeId}`,
    );
    await this.events.publish('flag.shared', {
      challengeId: event.challengeId,
      sourceId: event.sourceId,
      sharedFrom: event.sharedFrom,
    });
  }
}

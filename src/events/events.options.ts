/** The event settings the events context uses (from AppConfig, bound in its module). */
export class EventsOptions {
  constructor(
    /** EVENTS_KEEPALIVE: period of the SSE keep-alive comments. */
    readonly keepAliveMs: number,
    /** EVENTS_EXPIRING_LEAD: how long before `until` `instance.expiring` is published. */
    readonly expiringLeadMs: number,
    /** WEBHOOK_URL and WEBHOOK_SECRET; absent: no webhook. */
    readonly webhook: { url: string; secret: string } | undefined,
  ) {}
}

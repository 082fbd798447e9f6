import { isSpanContextValid, trace } from '@opentelemetry/api';

/** Span attribute names shared with upstream. */
export const ATTR = {
  challengeId: 'challenge_id',
  sourceId: 'source_id',
  identity: 'identity',
  reference: 'reference',
} as const;

/** Ids of the active span, for log lines; undefined outside any (valid) span. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  if (!ctx || !isSpanContextValid(ctx)) return undefined;
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

import type { EventFilter, LifecycleEvent } from '../../shared/domain';
import { InvalidArgumentError } from '../../shared/errors';
import type {
  EventGrpc,
  EventJson,
  WatchRequestGrpc,
} from '../../shared/transport/api-messages.generated';
import {
  formatTimestamp,
  MAX_ID_BYTES,
  requireMaxBytes,
  timestampToGrpc,
} from '../../shared/transport/protojson';

/**
 * api.v1.event messages ⇄ the watch service, for both transports. Validation happens here,
 * before any stream starts.
 */

/** What a watcher asked for: its filter, and where to resume (undefined: from now on). */
export interface WatchInput {
  filter: EventFilter;
  after: number | undefined;
}

const optionalId = (field: string, value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : requireMaxBytes(field, value, MAX_ID_BYTES);

/** An event id as a client gives it back (a decimal uint64 within the safe integers). */
function cursorOf(field: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const text = raw.trim();
  const id = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(id)) {
    throw new InvalidArgumentError(field, 'must be an event id (a non-negative integer)');
  }
  return id;
}

const last = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : Array.isArray(v) ? last(v[v.length - 1]) : undefined;

/**
 * GET /api/v1/events: `challengeId`/`challenge_id`, `sourceId`/`source_id` and `after` from the
 * query, or the `Last-Event-ID` header an EventSource sends when it reconnects (the header wins:
 * it is the newer position).
 * @throws InvalidArgumentError naming the bad parameter.
 */
export function watchFromQuery(
  query: Record<string, unknown>,
  lastEventId: string | undefined,
): WatchInput {
  const filter: EventFilter = {};
  const challengeId = optionalId(
    'challengeId',
    last(query.challengeId) ?? last(query.challenge_id),
  );
  const sourceId = optionalId('sourceId', last(query.sourceId) ?? last(query.source_id));
  if (challengeId !== undefined) filter.challengeId = challengeId;
  if (sourceId !== undefined) filter.sourceId = sourceId;
  const after = cursorOf('Last-Event-ID', lastEventId) ?? cursorOf('after', last(query.after));
  return { filter, after };
}

/**
 * WatchRequest → WatchInput.
 * @throws InvalidArgumentError naming the bad field.
 */
export function watchFromGrpc(req: WatchRequestGrpc): WatchInput {
  const filter: EventFilter = {};
  const challengeId = optionalId('challengeId', req.challengeId);
  const sourceId = optionalId('sourceId', req.sourceId);
  if (challengeId !== undefined) filter.challengeId = challengeId;
  if (sourceId !== undefined) filter.sourceId = sourceId;
  return { filter, after: cursorOf('after', req.after) };
}

export function eventToJson(event: LifecycleEvent): EventJson {
  return {
    id: String(event.id),
    time: formatTimestamp(event.time),
    type: event.type,
    challengeId: event.challengeId,
    sourceId: event.sourceId ?? '',
    identity: event.identity ?? '',
    sharedFrom: event.sharedFrom ?? '',
  };
}

export function eventToGrpc(event: LifecycleEvent): EventGrpc {
  return { ...eventToJson(event), time: timestampToGrpc(event.time) };
}

import type {
  CreateInstanceRequestGrpc,
  CreateInstanceRequestJson,
  QueryInstanceRequestGrpc,
  RenewInstanceRequestJson,
} from '../../shared/transport/api-messages.generated';
import { instanceToGrpc, instanceToJson } from '../../shared/transport/instance-message';
import {
  decodeJsonMessage,
  json,
  requireAdditional,
  requireId,
  type FieldTable,
} from '../../shared/transport/protojson';
import type { CreateInstanceInput } from '../instance-manager.types';

/**
 * api.v1.instance messages ⇄ service inputs and views, for both transports: protojson for REST
 * (as upstream's grpc-gateway), proto-loader objects for gRPC. Validation happens here, before
 * any service work (bad input changes nothing). The message types are generated from the protos.
 */

/** An instance's key, as every per-instance RPC carries it. */
export interface InstanceKey {
  challengeId: string;
  sourceId: string;
}

// Encoders live in shared/transport because a Challenge embeds Instances; re-exported for callers.
export { instanceToGrpc, instanceToJson };

// ---------------------------------------------------------------------------------------------
// REST (protojson)

const CREATE_FIELDS = {
  challengeId: json.string,
  sourceId: json.string,
  additional: json.stringMap,
} satisfies FieldTable<CreateInstanceRequestJson>;

const RENEW_FIELDS = {
  challengeId: json.string,
  sourceId: json.string,
} satisfies FieldTable<RenewInstanceRequestJson>;

/**
 * POST /api/v1/instance body → CreateInstanceInput.
 * @throws InvalidArgumentError naming the bad field.
 */
export function createInstanceFromJson(body: unknown): CreateInstanceInput {
  const f = decodeJsonMessage(body, CREATE_FIELDS);
  return {
    challengeId: requireId('challengeId', f.challengeId),
    sourceId: requireId('sourceId', f.sourceId),
    additional: requireAdditional('additional', f.additional),
  };
}

/**
 * Path parameters of GET/DELETE /api/v1/instance/{challenge_id}/{source_id}.
 * @throws InvalidArgumentError when one is empty.
 */
export function instanceKeyFromPath(challengeId: string, sourceId: string): InstanceKey {
  return {
    challengeId: requireId('challengeId', challengeId),
    sourceId: requireId('sourceId', sourceId),
  };
}

/**
 * PATCH /api/v1/instance/{challenge_id}/{source_id} (RenewInstance, body `*`): the body may be
 * empty or `{}`; when given it must still be a valid RenewInstanceRequest, and the path wins.
 * @throws InvalidArgumentError naming the bad field.
 */
export function renewKeyFromJson(
  challengeId: string,
  sourceId: string,
  body: unknown,
): InstanceKey {
  decodeJsonMessage(body, RENEW_FIELDS);
  return instanceKeyFromPath(challengeId, sourceId);
}

/**
 * GET /api/v1/instance query string: `sourceId` (JSON name) or `source_id` (proto name), as the
 * gateway accepts both. A repeated key (`?sourceId=a&sourceId=b`) keeps the last one.
 * @throws InvalidArgumentError when missing or empty.
 */
export function querySourceFromQuery(query: Record<string, unknown>): string {
  const pick = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : Array.isArray(v) ? pick(v[v.length - 1]) : undefined;
  return requireId('sourceId', pick(query.sourceId) ?? pick(query.source_id));
}

// ---------------------------------------------------------------------------------------------
// gRPC (proto-loader objects)

/**
 * CreateInstanceRequest → CreateInstanceInput.
 * @throws InvalidArgumentError naming the empty or oversized field.
 */
export function createInstanceFromGrpc(req: CreateInstanceRequestGrpc): CreateInstanceInput {
  return {
    challengeId: requireId('challengeId', req.challengeId),
    sourceId: requireId('sourceId', req.sourceId),
    additional: requireAdditional('additional', req.additional),
  };
}

/**
 * Retrieve/Renew/DeleteInstanceRequest → key.
 * @throws InvalidArgumentError naming the empty id.
 */
export function instanceKeyFromGrpc(req: InstanceKey): InstanceKey {
  return instanceKeyFromPath(req.challengeId, req.sourceId);
}

/**
 * QueryInstanceRequest → source id.
 * @throws InvalidArgumentError when empty.
 */
export function querySourceFromGrpc(req: QueryInstanceRequestGrpc): string {
  return requireId('sourceId', req.sourceId);
}

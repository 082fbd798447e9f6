import { InvalidArgumentError, InvalidUpdateMaskError } from '../../shared/errors';
import {
  UPDATE_CHALLENGE_REQUEST_FIELD_PATHS,
  UPDATE_STRATEGY_VALUES,
  type ChallengeGrpc,
  type ChallengeJson,
  type CreateChallengeRequestGrpc,
  type CreateChallengeRequestJson,
  type DeleteChallengeRequestGrpc,
  type DurationGrpc,
  type RetrieveChallengeRequestGrpc,
  type TimestampGrpc,
  type UpdateChallengeRequestGrpc,
  type UpdateChallengeRequestJson,
  type UpdateStrategy as WireUpdateStrategy,
} from '../../shared/transport/api-messages.generated';
import { instanceToGrpc, instanceToJson } from '../../shared/transport/instance-message';
import {
  decodeJsonMessage,
  durationFromGrpc,
  durationToGrpc,
  formatDuration,
  formatTimestamp,
  json,
  MAX_SCENARIO_BYTES,
  parseInt64,
  requireAdditional,
  requireId,
  requireMaxBytes,
  requirePositiveDuration,
  timestampFromGrpc,
  timestampToGrpc,
  type FieldTable,
} from '../../shared/transport/protojson';
import {
  UPDATABLE_PATHS,
  type ChallengeView,
  type CreateChallengeInput,
  type UpdatablePath,
  type UpdateChallengeInput,
  type UpdateStrategy,
} from '../challenge-store.types';

/**
 * api.v1.challenge messages ⇄ service inputs and views, for both transports: protojson for REST
 * (as upstream's grpc-gateway), proto-loader objects for gRPC. Validation happens here, before
 * any service work (bad input changes nothing); bounds of `min`/`max` are the service's (it answers
 * CHALLENGE_POOLER_OUT_OF_BOUNDS as upstream does). The message types are generated from the
 * protos.
 */

/** The proto's value names, indexed by number; the service knows each of them. */
const UPDATE_STRATEGIES = UPDATE_STRATEGY_VALUES satisfies readonly UpdateStrategy[];

/** Paths FieldMask.IsValid accepts for UpdateChallengeRequest (upstream: `fm.IsValid(req)`). */
const VALID_MASK_PATHS: ReadonlySet<string> = new Set(UPDATE_CHALLENGE_REQUEST_FIELD_PATHS);

// ---------------------------------------------------------------------------------------------
// Output

/** A challenge as protojson with EmitUnpopulated writes it: unset messages `null`, int64 strings. */
export function challengeToJson(c: ChallengeView): ChallengeJson {
  return {
    id: c.id,
    scenario: c.scenario,
    timeout: c.timeoutMs === undefined ? null : formatDuration(c.timeoutMs),
    until: c.until === undefined ? null : formatTimestamp(c.until),
    instances: c.instances.map(instanceToJson),
    additional: { ...c.additional },
    min: String(c.min),
    max: String(c.max),
  };
}

/** A challenge as the proto-loader object grpc-js serialises. */
export function challengeToGrpc(c: ChallengeView): ChallengeGrpc {
  return {
    id: c.id,
    scenario: c.scenario,
    timeout: c.timeoutMs === undefined ? null : durationToGrpc(c.timeoutMs),
    until: c.until === undefined ? null : timestampToGrpc(c.until),
    instances: c.instances.map(instanceToGrpc),
    additional: { ...c.additional },
    min: String(c.min),
    max: String(c.max),
  };
}

// ---------------------------------------------------------------------------------------------
// Input: REST (protojson)

const CREATE_FIELDS = {
  id: json.string,
  scenario: json.string,
  timeout: json.duration,
  until: json.timestamp,
  additional: json.stringMap,
  min: json.int64,
  max: json.int64,
} satisfies FieldTable<CreateChallengeRequestJson>;

const UPDATE_FIELDS = {
  ...CREATE_FIELDS,
  updateStrategy: json.enumOf(UPDATE_STRATEGIES),
  updateMask: json.fieldMask,
} satisfies FieldTable<UpdateChallengeRequestJson>;

/**
 * POST /api/v1/challenge body → CreateChallengeInput.
 * @throws InvalidArgumentError naming the bad field.
 */
export function createChallengeFromJson(body: unknown): CreateChallengeInput {
  const f = decodeJsonMessage(body, CREATE_FIELDS);
  return {
    id: requireId('id', f.id),
    scenario: requireMaxBytes('scenario', f.scenario ?? '', MAX_SCENARIO_BYTES),
    ...optionalTimeout(requirePositiveDuration('timeout', f.timeout)),
    ...(f.until !== undefined && { until: f.until }),
    additional: requireAdditional('additional', f.additional),
    min: f.min ?? 0,
    max: f.max ?? 0,
  };
}

/**
 * PATCH /api/v1/challenge/{id} body (`*`, the path id wins) → UpdateChallengeInput.
 * @throws InvalidArgumentError naming the bad field; InvalidUpdateMaskError for unknown paths.
 */
export function updateChallengeFromJson(pathId: string, body: unknown): UpdateChallengeInput {
  const f = decodeJsonMessage(body, UPDATE_FIELDS);
  return {
    id: requireId('id', pathId),
    mask: maskFromPaths(f.updateMask),
    ...(f.scenario !== undefined && {
      scenario: requireMaxBytes('scenario', f.scenario, MAX_SCENARIO_BYTES),
    }),
    updateStrategy: f.updateStrategy ?? 'update_in_place',
    ...optionalTimeout(requirePositiveDuration('timeout', f.timeout)),
    ...(f.until !== undefined && { until: f.until }),
    additional: requireAdditional('additional', f.additional),
    min: f.min ?? 0,
    max: f.max ?? 0,
  };
}

/**
 * A path id (GET, DELETE /api/v1/challenge/{id}).
 * @throws InvalidArgumentError when empty.
 */
export function challengeIdFromPath(id: string): string {
  return requireId('id', id);
}

// ---------------------------------------------------------------------------------------------
// Input: gRPC (proto-loader objects)

/** A request carrying one challenge id (Retrieve, Delete). */
type ChallengeIdRequestGrpc = RetrieveChallengeRequestGrpc | DeleteChallengeRequestGrpc;

/**
 * CreateChallengeRequest → CreateChallengeInput.
 * @throws InvalidArgumentError naming the bad field.
 */
export function createChallengeFromGrpc(req: CreateChallengeRequestGrpc): CreateChallengeInput {
  return {
    id: requireId('id', req.id),
    scenario: requireMaxBytes('scenario', req.scenario, MAX_SCENARIO_BYTES),
    ...optionalTimeout(requirePositiveDuration('timeout', grpcDuration('timeout', req.timeout))),
    ...optionalUntil(grpcTimestamp('until', req.until)),
    additional: requireAdditional('additional', req.additional),
    min: grpcInt64('min', req.min),
    max: grpcInt64('max', req.max),
  };
}

/**
 * UpdateChallengeRequest → UpdateChallengeInput.
 * @throws InvalidArgumentError naming the bad field; InvalidUpdateMaskError for unknown paths.
 */
export function updateChallengeFromGrpc(req: UpdateChallengeRequestGrpc): UpdateChallengeInput {
  const strategy = parseStrategy(req.updateStrategy);
  return {
    id: requireId('id', req.id),
    mask: req.updateMask ? maskFromPaths(req.updateMask.paths ?? []) : undefined,
    ...(typeof req.scenario === 'string' && {
      scenario: requireMaxBytes('scenario', req.scenario, MAX_SCENARIO_BYTES),
    }),
    updateStrategy: strategy,
    ...optionalTimeout(requirePositiveDuration('timeout', grpcDuration('timeout', req.timeout))),
    ...optionalUntil(grpcTimestamp('until', req.until)),
    additional: requireAdditional('additional', req.additional),
    min: grpcInt64('min', req.min),
    max: grpcInt64('max', req.max),
  };
}

/**
 * RetrieveChallengeRequest / DeleteChallengeRequest → id.
 * @throws InvalidArgumentError when empty.
 */
export function challengeIdFromGrpc(req: ChallengeIdRequestGrpc): string {
  return requireId('id', req.id);
}

// ---------------------------------------------------------------------------------------------
// Helpers

function optionalTimeout(ms: number | undefined): { timeoutMs?: number } {
  return ms === undefined ? {} : { timeoutMs: ms };
}

function optionalUntil(until: Date | undefined): { until?: Date } {
  return until === undefined ? {} : { until };
}

/**
 * Proto paths of a mask → the service's mask: undefined when no mask was sent; unknown paths
 * refused as upstream (`fm.IsValid`); only the paths the service applies are kept.
 */
function maskFromPaths(paths: string[] | undefined): ReadonlySet<UpdatablePath> | undefined {
  if (paths === undefined) return undefined;
  if (paths.some((p) => !VALID_MASK_PATHS.has(p))) throw new InvalidUpdateMaskError(paths);
  const updatable: readonly string[] = UPDATABLE_PATHS;
  return new Set(paths.filter((p): p is UpdatablePath => updatable.includes(p)));
}

function parseStrategy(raw: WireUpdateStrategy | number | undefined): UpdateStrategy {
  if (raw === undefined) return 'update_in_place';
  const parsed = json.enumOf(UPDATE_STRATEGIES).safeParse(raw);
  if (!parsed.success) {
    throw new InvalidArgumentError(
      'updateStrategy',
      `must be one of ${UPDATE_STRATEGIES.join(', ')}`,
    );
  }
  return parsed.data;
}

function grpcDuration(field: string, d: DurationGrpc | null | undefined): number | undefined {
  if (d === undefined || d === null) return undefined;
  const ms = durationFromGrpc(d);
  if (typeof ms !== 'number') throw new InvalidArgumentError(field, ms.problem);
  return ms;
}

function grpcTimestamp(field: string, t: TimestampGrpc | null | undefined): Date | undefined {
  if (t === undefined || t === null) return undefined;
  const date = timestampFromGrpc(t);
  if (!(date instanceof Date)) throw new InvalidArgumentError(field, date.problem);
  return date;
}

function grpcInt64(field: string, v: string | undefined): number {
  if (v === undefined) return 0;
  const n = parseInt64(v);
  if (typeof n !== 'number') throw new InvalidArgumentError(field, n.problem);
  return n;
}

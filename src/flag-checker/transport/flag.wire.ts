import type {
  CheckRequestGrpc,
  CheckRequestJson,
  CheckResponseGrpc,
  CheckResponseJson,
} from '../../shared/transport/api-messages.generated';
import { InvalidArgumentError } from '../../shared/errors';
import {
  decodeJsonMessage,
  json,
  requireId,
  requireMaxBytes,
  type FieldTable,
} from '../../shared/transport/protojson';
import type { FlagCheckInput, FlagCheckResult } from '../flag-checker.types';

/**
 * api.v1.flag messages ⇄ service input and result, for both transports. Validation happens here,
 * before any work; no problem text ever echoes the flag.
 */

/** Longest flag accepted: flags are short, and a check hashes what it is given. */
export const MAX_FLAG_BYTES = 1024;

const CHECK_FIELDS = {
  challengeId: json.string,
  sourceId: json.string,
  flag: json.string,
} satisfies FieldTable<CheckRequestJson>;

function checkInput(challengeId?: string, sourceId?: string, flag?: string): FlagCheckInput {
  const input = {
    challengeId: requireId('challengeId', challengeId),
    sourceId: requireId('sourceId', sourceId),
    flag: flag ?? '',
  };
  if (input.flag === '') throw new InvalidArgumentError('flag', 'must not be empty');
  requireMaxBytes('flag', input.flag, MAX_FLAG_BYTES);
  return input;
}

/**
 * POST /api/v1/flag/check body (JSON or proto field names) → input.
 * @throws InvalidArgumentError naming the bad field.
 */
export function checkFromJson(body: unknown): FlagCheckInput {
  const f = decodeJsonMessage(body, CHECK_FIELDS);
  return checkInput(f.challengeId, f.sourceId, f.flag);
}

/** @throws InvalidArgumentError naming the bad field. */
export function checkFromGrpc(req: CheckRequestGrpc): FlagCheckInput {
  return checkInput(req.challengeId, req.sourceId, req.flag);
}

/** `valid` always (EmitUnpopulated); `sharedFrom` only when set (a proto3 optional). */
export function checkResultToJson(r: FlagCheckResult): CheckResponseJson {
  return r.sharedFrom === undefined
    ? { valid: r.valid }
    : { valid: r.valid, sharedFrom: r.sharedFrom };
}

export function checkResultToGrpc(r: FlagCheckResult): CheckResponseGrpc {
  return checkResultToJson(r);
}

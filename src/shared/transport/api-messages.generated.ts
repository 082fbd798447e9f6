// Generated from proto/api/v1/challenge/challenge.proto, proto/api/v1/instance/instance.proto, proto/api/v1/flag/flag.proto, proto/api/v1/event/event.proto
// by scripts/generate-proto-types.mjs. Do not edit: change the protos, then run
// `npm run generate:proto`.

import type { Observable } from 'rxjs';

/** google.protobuf.Duration: `{seconds, nanos}` on gRPC, `"600s"` in JSON. */
export interface DurationGrpc {
  seconds: string;
  nanos: number;
}
export type DurationJson = string;

/** google.protobuf.Timestamp: `{seconds, nanos}` on gRPC, RFC 3339 in JSON. */
export interface TimestampGrpc {
  seconds: string;
  nanos: number;
}
export type TimestampJson = string;

/**
 * google.protobuf.FieldMask: proto paths on gRPC, one comma-separated string of lowerCamelCase
 * paths in JSON.
 */
export interface FieldMaskGrpc {
  paths: string[];
}
export type FieldMaskJson = string;

/** google.protobuf.Empty. */
export type EmptyGrpc = Record<string, never>;
export type EmptyJson = Record<string, never>;

// ---------------------------------------------------------------------------------------------
// api.v1.challenge

/**
 * api.v1.challenge.UpdateStrategy: value names, indexed by number (protojson writes and reads the
 * names).
 *
 * How existing instances follow a changed scenario or additional. Value names are also their
 * JSON strings.
 */
export const UPDATE_STRATEGY_VALUES = ['update_in_place', 'blue_green', 'recreate'] as const;

export type UpdateStrategy = (typeof UPDATE_STRATEGY_VALUES)[number];

/**
 * api.v1.challenge.CreateChallengeRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface CreateChallengeRequestGrpc {
  /** `id = 1` */
  id: string;
  /** `scenario = 2`: OCI reference of the scenario. */
  scenario: string;
  /** `timeout = 4`: Field 3 is not used (upstream numbering). */
  timeout: DurationGrpc | null;
  /** `until = 5` */
  until: TimestampGrpc | null;
  /** `additional = 6` */
  additional: Record<string, string>;
  /** `min = 7`: Pool minimum (pre-provisioned instances). */
  min: string;
  /** `max = 8`: Pool maximum (0 = no maximum). */
  max: string;
}

/**
 * api.v1.challenge.CreateChallengeRequest in protojson, as the REST API writes it
 * (EmitUnpopulated).
 */
export interface CreateChallengeRequestJson {
  /** `id = 1` */
  id: string;
  /** `scenario = 2`: OCI reference of the scenario. */
  scenario: string;
  /** `timeout = 4`: Field 3 is not used (upstream numbering). */
  timeout: DurationJson | null;
  /** `until = 5` */
  until: TimestampJson | null;
  /** `additional = 6` */
  additional: Record<string, string>;
  /** `min = 7`: Pool minimum (pre-provisioned instances). */
  min: string;
  /** `max = 8`: Pool maximum (0 = no maximum). */
  max: string;
}

/**
 * api.v1.challenge.RetrieveChallengeRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface RetrieveChallengeRequestGrpc {
  /** `id = 1` */
  id: string;
}

/**
 * api.v1.challenge.RetrieveChallengeRequest in protojson, as the REST API writes it
 * (EmitUnpopulated).
 */
export interface RetrieveChallengeRequestJson {
  /** `id = 1` */
  id: string;
}

/**
 * api.v1.challenge.DeleteChallengeRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface DeleteChallengeRequestGrpc {
  /** `id = 1` */
  id: string;
}

/**
 * api.v1.challenge.DeleteChallengeRequest in protojson, as the REST API writes it
 * (EmitUnpopulated).
 */
export interface DeleteChallengeRequestJson {
  /** `id = 1` */
  id: string;
}

/**
 * api.v1.challenge.UpdateChallengeRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface UpdateChallengeRequestGrpc {
  /** `id = 1` */
  id: string;
  /** `scenario = 2` */
  scenario?: string;
  /** `update_strategy = 3`: Read directly, whatever the update mask says. */
  updateStrategy?: UpdateStrategy | number;
  /** `timeout = 4` */
  timeout: DurationGrpc | null;
  /** `until = 5` */
  until: TimestampGrpc | null;
  /** `update_mask = 6`: Which of scenario, timeout, until, additional, min, max to apply. */
  updateMask: FieldMaskGrpc | null;
  /** `additional = 7` */
  additional: Record<string, string>;
  /** `min = 8` */
  min: string;
  /** `max = 9` */
  max: string;
}

/**
 * api.v1.challenge.UpdateChallengeRequest in protojson, as the REST API writes it
 * (EmitUnpopulated).
 */
export interface UpdateChallengeRequestJson {
  /** `id = 1` */
  id: string;
  /** `scenario = 2` */
  scenario?: string;
  /** `update_strategy = 3`: Read directly, whatever the update mask says. */
  updateStrategy?: UpdateStrategy;
  /** `timeout = 4` */
  timeout: DurationJson | null;
  /** `until = 5` */
  until: TimestampJson | null;
  /** `update_mask = 6`: Which of scenario, timeout, until, additional, min, max to apply. */
  updateMask: FieldMaskJson | null;
  /** `additional = 7` */
  additional: Record<string, string>;
  /** `min = 8` */
  min: string;
  /** `max = 9` */
  max: string;
}

/**
 * Every proto path FieldMask's IsValid accepts for api.v1.challenge.UpdateChallengeRequest (its
 * fields, and the fields of its singular message fields).
 */
export const UPDATE_CHALLENGE_REQUEST_FIELD_PATHS = [
  'id',
  'scenario',
  'update_strategy',
  'timeout',
  'timeout.seconds',
  'timeout.nanos',
  'until',
  'until.seconds',
  'until.nanos',
  'update_mask',
  'update_mask.paths',
  'additional',
  'min',
  'max',
] as const;

/**
 * api.v1.challenge.Challenge as proto-loader decodes it and grpc-js encodes it (our loader
 * options).
 */
export interface ChallengeGrpc {
  /** `id = 1` */
  id: string;
  /** `scenario = 2` */
  scenario: string;
  /** `timeout = 3` */
  timeout: DurationGrpc | null;
  /** `until = 4` */
  until: TimestampGrpc | null;
  /** `instances = 5`: Claimed instances only (pooled ones are hidden). */
  instances: InstanceGrpc[];
  /** `additional = 6` */
  additional: Record<string, string>;
  /** `min = 7` */
  min: string;
  /** `max = 8` */
  max: string;
}

/** api.v1.challenge.Challenge in protojson, as the REST API writes it (EmitUnpopulated). */
export interface ChallengeJson {
  /** `id = 1` */
  id: string;
  /** `scenario = 2` */
  scenario: string;
  /** `timeout = 3` */
  timeout: DurationJson | null;
  /** `until = 4` */
  until: TimestampJson | null;
  /** `instances = 5`: Claimed instances only (pooled ones are hidden). */
  instances: InstanceJson[];
  /** `additional = 6` */
  additional: Record<string, string>;
  /** `min = 7` */
  min: string;
  /** `max = 8` */
  max: string;
}

/**
 * api.v1.challenge.ChallengeStore handlers over gRPC: one method per RPC, named as Nest's
 * `@GrpcMethod` calls it.
 */
export interface ChallengeStoreGrpcHandlers {
  /** `CreateChallenge`: POST /api/v1/challenge (body *) */
  createChallenge(request: CreateChallengeRequestGrpc): Promise<ChallengeGrpc>;
  /** `RetrieveChallenge`: GET /api/v1/challenge/{id} */
  retrieveChallenge(request: RetrieveChallengeRequestGrpc): Promise<ChallengeGrpc>;
  /** `QueryChallenge`: GET /api/v1/challenge */
  queryChallenge(request: EmptyGrpc): Observable<ChallengeGrpc>;
  /** `UpdateChallenge`: PATCH /api/v1/challenge/{id} (body *) */
  updateChallenge(request: UpdateChallengeRequestGrpc): Promise<ChallengeGrpc>;
  /** `DeleteChallenge`: DELETE /api/v1/challenge/{id} */
  deleteChallenge(request: DeleteChallengeRequestGrpc): Promise<EmptyGrpc>;
}

// ---------------------------------------------------------------------------------------------
// api.v1.instance

/**
 * api.v1.instance.CreateInstanceRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface CreateInstanceRequestGrpc {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
  /** `additional = 3` */
  additional: Record<string, string>;
}

/**
 * api.v1.instance.CreateInstanceRequest in protojson, as the REST API writes it (EmitUnpopulated).
 */
export interface CreateInstanceRequestJson {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
  /** `additional = 3` */
  additional: Record<string, string>;
}

/**
 * api.v1.instance.RetrieveInstanceRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface RetrieveInstanceRequestGrpc {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
}

/**
 * api.v1.instance.RetrieveInstanceRequest in protojson, as the REST API writes it
 * (EmitUnpopulated).
 */
export interface RetrieveInstanceRequestJson {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
}

/**
 * api.v1.instance.QueryInstanceRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface QueryInstanceRequestGrpc {
  /** `source_id = 1` */
  sourceId: string;
}

/**
 * api.v1.instance.QueryInstanceRequest in protojson, as the REST API writes it (EmitUnpopulated).
 */
export interface QueryInstanceRequestJson {
  /** `source_id = 1` */
  sourceId: string;
}

/**
 * api.v1.instance.RenewInstanceRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface RenewInstanceRequestGrpc {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
}

/**
 * api.v1.instance.RenewInstanceRequest in protojson, as the REST API writes it (EmitUnpopulated).
 */
export interface RenewInstanceRequestJson {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
}

/**
 * api.v1.instance.DeleteInstanceRequest as proto-loader decodes it and grpc-js encodes it (our
 * loader options).
 */
export interface DeleteInstanceRequestGrpc {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
}

/**
 * api.v1.instance.DeleteInstanceRequest in protojson, as the REST API writes it (EmitUnpopulated).
 */
export interface DeleteInstanceRequestJson {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
}

/**
 * api.v1.instance.Instance as proto-loader decodes it and grpc-js encodes it (our loader options).
 */
export interface InstanceGrpc {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
  /** `since = 3`: When the instance was provisioned (pooled instances keep it when claimed). */
  since: TimestampGrpc | null;
  /** `last_renew = 4` */
  lastRenew: TimestampGrpc | null;
  /** `until = 5`: Unset: the instance never expires. */
  until?: TimestampGrpc;
  /** `connection_info = 6` */
  connectionInfo: string;
  /**
   * `flag = 7`: Set only when exactly one flag exists; use flags.
   * @deprecated
   */
  flag?: string;
  /**
   * `flags = 9`: Declared before additional, as upstream does (JSON output follows declaration
   * order).
   */
  flags: string[];
  /** `additional = 8`: The instance-level additional only (not merged with the challenge's). */
  additional: Record<string, string>;
}

/** api.v1.instance.Instance in protojson, as the REST API writes it (EmitUnpopulated). */
export interface InstanceJson {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
  /** `since = 3`: When the instance was provisioned (pooled instances keep it when claimed). */
  since: TimestampJson | null;
  /** `last_renew = 4` */
  lastRenew: TimestampJson | null;
  /** `until = 5`: Unset: the instance never expires. */
  until?: TimestampJson;
  /** `connection_info = 6` */
  connectionInfo: string;
  /**
   * `flag = 7`: Set only when exactly one flag exists; use flags.
   * @deprecated
   */
  flag?: string;
  /**
   * `flags = 9`: Declared before additional, as upstream does (JSON output follows declaration
   * order).
   */
  flags: string[];
  /** `additional = 8`: The instance-level additional only (not merged with the challenge's). */
  additional: Record<string, string>;
}

/**
 * api.v1.instance.InstanceManager handlers over gRPC: one method per RPC, named as Nest's
 * `@GrpcMethod` calls it.
 */
export interface InstanceManagerGrpcHandlers {
  /** `CreateInstance`: POST /api/v1/instance (body *) */
  createInstance(request: CreateInstanceRequestGrpc): Promise<InstanceGrpc>;
  /** `RetrieveInstance`: GET /api/v1/instance/{challenge_id}/{source_id} */
  retrieveInstance(request: RetrieveInstanceRequestGrpc): Promise<InstanceGrpc>;
  /** `QueryInstance`: GET /api/v1/instance?source_id= */
  queryInstance(request: QueryInstanceRequestGrpc): Observable<InstanceGrpc>;
  /** `RenewInstance`: PATCH /api/v1/instance/{challenge_id}/{source_id} (body *) */
  renewInstance(request: RenewInstanceRequestGrpc): Promise<InstanceGrpc>;
  /** `DeleteInstance`: DELETE /api/v1/instance/{challenge_id}/{source_id} */
  deleteInstance(request: DeleteInstanceRequestGrpc): Promise<EmptyGrpc>;
}

// ---------------------------------------------------------------------------------------------
// api.v1.flag

/**
 * api.v1.flag.CheckRequest as proto-loader decodes it and grpc-js encodes it (our loader options).
 */
export interface CheckRequestGrpc {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
  /** `flag = 3`: At most 1024 bytes. */
  flag: string;
}

/** api.v1.flag.CheckRequest in protojson, as the REST API writes it (EmitUnpopulated). */
export interface CheckRequestJson {
  /** `challenge_id = 1` */
  challengeId: string;
  /** `source_id = 2` */
  sourceId: string;
  /** `flag = 3`: At most 1024 bytes. */
  flag: string;
}

/**
 * api.v1.flag.CheckResponse as proto-loader decodes it and grpc-js encodes it (our loader options).
 */
export interface CheckResponseGrpc {
  /**
   * `valid = 1`: The flag is one of the source's instances' (live, or deleted within
   * FLAG_RETENTION).
   */
  valid: boolean;
  /** `shared_from = 2`: Not valid, but another source of the same challenge had it: that source. */
  sharedFrom?: string;
}

/** api.v1.flag.CheckResponse in protojson, as the REST API writes it (EmitUnpopulated). */
export interface CheckResponseJson {
  /**
   * `valid = 1`: The flag is one of the source's instances' (live, or deleted within
   * FLAG_RETENTION).
   */
  valid: boolean;
  /** `shared_from = 2`: Not valid, but another source of the same challenge had it: that source. */
  sharedFrom?: string;
}

/**
 * api.v1.flag.FlagChecker handlers over gRPC: one method per RPC, named as Nest's `@GrpcMethod`
 * calls it.
 */
export interface FlagCheckerGrpcHandlers {
  /** `Check`: POST /api/v1/flag/check (body *) */
  check(request: CheckRequestGrpc): Promise<CheckResponseGrpc>;
}

// ---------------------------------------------------------------------------------------------
// api.v1.event

/**
 * api.v1.event.WatchRequest as proto-loader decodes it and grpc-js encodes it (our loader options).
 */
export interface WatchRequestGrpc {
  /** `challenge_id = 1`: Only the events of this challenge (empty: every challenge). */
  challengeId: string;
  /** `source_id = 2`: Only the events of this source (empty: every source). */
  sourceId: string;
  /**
   * `after = 3`: Resume after this event id (the last one received); unset: only events from now
   * on.
   */
  after?: string;
}

/** api.v1.event.WatchRequest in protojson, as the REST API writes it (EmitUnpopulated). */
export interface WatchRequestJson {
  /** `challenge_id = 1`: Only the events of this challenge (empty: every challenge). */
  challengeId: string;
  /** `source_id = 2`: Only the events of this source (empty: every source). */
  sourceId: string;
  /**
   * `after = 3`: Resume after this event id (the last one received); unset: only events from now
   * on.
   */
  after?: string;
}

/** api.v1.event.Event as proto-loader decodes it and grpc-js encodes it (our loader options). */
export interface EventGrpc {
  /** `id = 1`: Monotonic across every replica; resume with it. */
  id: string;
  /** `time = 2` */
  time: TimestampGrpc | null;
  /**
   * `type = 3`: challenge.created, challenge.updated, challenge.deleted, instance.created,
   * instance.ready,
   * instance.renewed, instance.expiring, instance.deleted, instance.failed, pool.low,
   * pool.exhausted or flag.shared.
   */
  type: string;
  /** `challenge_id = 4` */
  challengeId: string;
  /** `source_id = 5`: Set for the events of a claimed instance. */
  sourceId: string;
  /** `identity = 6`: Set for instance events once the instance has one. */
  identity: string;
  /** `shared_from = 7`: flag.shared: the source whose instance had the flag source_id submitted. */
  sharedFrom: string;
}

/** api.v1.event.Event in protojson, as the REST API writes it (EmitUnpopulated). */
export interface EventJson {
  /** `id = 1`: Monotonic across every replica; resume with it. */
  id: string;
  /** `time = 2` */
  time: TimestampJson | null;
  /**
   * `type = 3`: challenge.created, challenge.updated, challenge.deleted, instance.created,
   * instance.ready,
   * instance.renewed, instance.expiring, instance.deleted, instance.failed, pool.low,
   * pool.exhausted or flag.shared.
   */
  type: string;
  /** `challenge_id = 4` */
  challengeId: string;
  /** `source_id = 5`: Set for the events of a claimed instance. */
  sourceId: string;
  /** `identity = 6`: Set for instance events once the instance has one. */
  identity: string;
  /** `shared_from = 7`: flag.shared: the source whose instance had the flag source_id submitted. */
  sharedFrom: string;
}

/**
 * api.v1.event.EventStream handlers over gRPC: one method per RPC, named as Nest's `@GrpcMethod`
 * calls it.
 */
export interface EventStreamGrpcHandlers {
  /** `Watch`: GET /api/v1/events?challenge_id=&source_id=&after= (Server-Sent Events) */
  watch(request: WatchRequestGrpc): Observable<EventGrpc>;
}

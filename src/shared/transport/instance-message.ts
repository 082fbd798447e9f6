import { singleFlag, type Instance } from '../domain';
import { formatTimestamp, timestampToGrpc, type GrpcTimestamp } from './protojson';

/**
 * The api.v1.instance.Instance message, shared by both contexts because a Challenge embeds its
 * instances. Field order follows upstream's declaration order (protojson writes in that order).
 */

/** api.v1.instance.Instance in protojson (REST) form. */
export interface InstanceJson {
  challengeId: string;
  sourceId: string;
  since: string;
  lastRenew: string;
  /** proto3 optional: absent when the instance never expires. */
  until?: string;
  connectionInfo: string;
  /** proto3 optional, deprecated: present only when there is exactly one flag. */
  flag?: string;
  flags: string[];
  additional: Record<string, string>;
}

/** api.v1.instance.Instance as a proto-loader object (gRPC). */
export interface InstanceGrpc {
  challengeId: string;
  sourceId: string;
  since: GrpcTimestamp;
  lastRenew: GrpcTimestamp;
  until?: GrpcTimestamp;
  connectionInfo: string;
  flag?: string;
  flags: string[];
  additional: Record<string, string>;
}

/** An instance as protojson with EmitUnpopulated writes it (optional fields omitted when unset). */
export function instanceToJson(instance: Instance): InstanceJson {
  const flag = singleFlag(instance);
  return {
    challengeId: instance.challengeId,
    sourceId: instance.sourceId ?? '',
    since: formatTimestamp(instance.since),
    lastRenew: formatTimestamp(instance.lastRenew),
    ...(instance.until !== undefined && { until: formatTimestamp(instance.until) }),
    connectionInfo: instance.connectionInfo,
    ...(flag !== undefined && { flag }),
    flags: [...instance.flags],
    additional: { ...instance.additional },
  };
}

/** An instance as the proto-loader object grpc-js serialises (unset optionals left undefined). */
export function instanceToGrpc(instance: Instance): InstanceGrpc {
  const flag = singleFlag(instance);
  return {
    challengeId: instance.challengeId,
    sourceId: instance.sourceId ?? '',
    since: timestampToGrpc(instance.since),
    lastRenew: timestampToGrpc(instance.lastRenew),
    ...(instance.until !== undefined && { until: timestampToGrpc(instance.until) }),
    connectionInfo: instance.connectionInfo,
    ...(flag !== undefined && { flag }),
    flags: [...instance.flags],
    additional: { ...instance.additional },
  };
}

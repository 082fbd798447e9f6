import { singleFlag, type Instance } from '../domain';
import type { InstanceGrpc, InstanceJson } from './api-messages.generated';
import { formatTimestamp, timestampToGrpc } from './protojson';

/**
 * Encoders of the api.v1.instance.Instance message (its types are generated from the proto),
 * shared by both contexts because a Challenge embeds its instances.
 */

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

import { Root, type IMapField, type INamespace } from 'protobufjs';
import type { RpcStatus, StatusDetail } from '../errors/error-status';

/**
 * google.rpc.Status and the error detail messages we send, written from
 * googleapis google/rpc/{status,error_details}.proto (field numbers are the wire contract).
 * A JSON descriptor keeps it in code: no .proto file to ship or find at run time.
 */
const METADATA_MAP_FIELD: IMapField = { keyType: 'string', type: 'string', id: 3 };

const DESCRIPTOR: INamespace = {
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: {
              fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } },
            },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: METADATA_MAP_FIELD,
              },
            },
            ResourceInfo: {
              fields: {
                resource_type: { type: 'string', id: 1 },
                resource_name: { type: 'string', id: 2 },
                owner: { type: 'string', id: 3 },
                description: { type: 'string', id: 4 },
              },
            },
            PreconditionFailure: {
              fields: { violations: { rule: 'repeated', type: 'Violation', id: 1 } },
              nested: {
                Violation: {
                  fields: {
                    type: { type: 'string', id: 1 },
                    subject: { type: 'string', id: 2 },
                    description: { type: 'string', id: 3 },
                  },
                },
              },
            },
            BadRequest: {
              fields: { field_violations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
              nested: {
                FieldViolation: {
                  fields: {
                    field: { type: 'string', id: 1 },
                    description: { type: 'string', id: 2 },
                    reason: { type: 'string', id: 3 },
                    localized_message: { type: 'google.rpc.LocalizedMessage', id: 4 },
                  },
                },
              },
            },
            LocalizedMessage: {
              fields: { locale: { type: 'string', id: 1 }, message: { type: 'string', id: 2 } },
            },
            Help: {
              fields: { links: { rule: 'repeated', type: 'Link', id: 1 } },
              nested: {
                Link: {
                  fields: {
                    description: { type: 'string', id: 1 },
                    url: { type: 'string', id: 2 },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

const root = Root.fromJSON(DESCRIPTOR);
const StatusType = root.lookupType('google.rpc.Status');
const TYPE_URL_PREFIX = 'type.googleapis.com/google.rpc.';

/** A detail as protobufjs wants it (proto field names, since the descriptor uses them). */
function detailFields(detail: StatusDetail): Record<string, unknown> {
  switch (detail.type) {
    case 'ErrorInfo':
      return { reason: detail.reason, domain: detail.domain, metadata: detail.metadata };
    case 'ResourceInfo':
      return {
        resource_type: detail.resourceType,
        resource_name: detail.resourceName,
        owner: detail.owner,
        description: detail.description,
      };
    case 'PreconditionFailure':
      return { violations: detail.violations };
    case 'BadRequest':
      return { field_violations: detail.fieldViolations };
    case 'Help':
      return { links: detail.links };
  }
}

/**
 * Encodes a status as the binary google.rpc.Status that gRPC clients read from the
 * `grpc-status-details-bin` trailer (grpc-go `status.FromError`, grpc-js `@grpc/grpc-js` users).
 */
export function encodeRpcStatus(status: RpcStatus): Buffer {
  const details = status.details.map((d) => {
    const type = root.lookupType(`google.rpc.${d.type}`);
    return {
      type_url: `${TYPE_URL_PREFIX}${d.type}`,
      value: type.encode(type.fromObject(detailFields(d))).finish(),
    };
  });
  const message = StatusType.fromObject({ code: status.code, message: status.message, details });
  return Buffer.from(StatusType.encode(message).finish());
}

/** A detail in protojson form (camelCase, every field emitted, `@type` first). */
function detailJson(detail: StatusDetail): Record<string, unknown> {
  const head = { '@type': `${TYPE_URL_PREFIX}${detail.type}` };
  switch (detail.type) {
    case 'ErrorInfo':
      return { ...head, reason: detail.reason, domain: detail.domain, metadata: detail.metadata };
    case 'ResourceInfo':
      return {
        ...head,
        resourceType: detail.resourceType,
        resourceName: detail.resourceName,
        owner: detail.owner,
        description: detail.description,
      };
    case 'PreconditionFailure':
      return { ...head, violations: detail.violations };
    case 'BadRequest':
      return {
        ...head,
        fieldViolations: detail.fieldViolations.map((v) => ({
          field: v.field,
          description: v.description,
          reason: v.reason,
          // An unset message field, emitted as null like every protojson EmitUnpopulated output.
          localizedMessage: null,
        })),
      };
    case 'Help':
      return { ...head, links: detail.links };
  }
}

/** The JSON body of a REST error, as grpc-gateway writes google.rpc.Status. */
export interface RpcStatusJson {
  code: number;
  message: string;
  details: Record<string, unknown>[];
}

/** A status as grpc-gateway's JSON error body: `{code, message, details: [{"@type": …}]}`. */
export function rpcStatusToJson(status: RpcStatus): RpcStatusJson {
  return { code: status.code, message: status.message, details: status.details.map(detailJson) };
}

/**
 * Decodes a binary google.rpc.Status, details included (for tests and gRPC clients of ours).
 * Each detail comes back as `{ '@type', ...fields }` with camelCase names.
 */
export function decodeRpcStatus(bytes: Uint8Array): RpcStatusJson {
  const decoded = StatusType.toObject(StatusType.decode(bytes), { defaults: true }) as {
    code: number;
    message: string;
    details: { type_url: string; value: Uint8Array }[];
  };
  return {
    code: decoded.code,
    message: decoded.message,
    details: decoded.details.map((any) => {
      const type = root.lookupType(any.type_url.slice('type.googleapis.com/'.length));
      const fields = type.toObject(type.decode(any.value), {
        defaults: true,
        arrays: true,
        objects: true,
      });
      return { '@type': any.type_url, ...camelKeys(fields) };
    }),
  };
}

/**
 * Deeply renames snake_case field names to camelCase (decoded messages use proto names); map
 * keys (ErrorInfo.metadata) are data and stay as they are.
 */
function camelKeys(value: unknown): Record<string, unknown> {
  const convert = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(convert);
    if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
      return Object.fromEntries(
        Object.entries(v).map(([k, inner]) => [
          k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()),
          k === 'metadata' ? inner : convert(inner),
        ]),
      );
    }
    return v;
  };
  return convert(value) as Record<string, unknown>;
}

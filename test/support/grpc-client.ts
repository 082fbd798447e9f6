import {
  credentials,
  loadPackageDefinition,
  type Client,
  type ClientReadableStream,
  type GrpcObject,
  type Metadata,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { decodeRpcStatus, type RpcStatusJson } from '../../src/shared/transport/rpc-status';

const PROTO_ROOT = join(__dirname, '..', '..', 'proto');

/** A unary call: request in, promise of the response or of a ServiceError. */
export type UnaryCall = (request: object) => Promise<Record<string, unknown>>;
/** A server-streaming call: request in, promise of every message or of a ServiceError. */
export type StreamCall = (request: object) => Promise<Record<string, unknown>[]>;

/** gRPC clients of both services, loaded from our protos as a third-party client would. */
export interface ApiClients {
  challenge: Client & Record<string, unknown>;
  instance: Client & Record<string, unknown>;
  unary(client: Client & Record<string, unknown>, method: string): UnaryCall;
  stream(client: Client & Record<string, unknown>, method: string): StreamCall;
  close(): void;
}

function lookup(root: GrpcObject, path: string): ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  return node as ServiceClientConstructor;
}

/** proto-loader options of the test clients: as a third-party client loads our protos. */
export const CLIENT_LOADER_OPTIONS = {
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Connects plaintext gRPC clients to `address` (host:port). */
export function connectApiClients(address: string): ApiClients {
  const definition = loadSync(
    ['api/v1/challenge/challenge.proto', 'api/v1/instance/instance.proto'],
    CLIENT_LOADER_OPTIONS,
  );
  const root = loadPackageDefinition(definition);
  const insecure = credentials.createInsecure();
  const challenge = new (lookup(root, 'api.v1.challenge.ChallengeStore'))(address, insecure);
  const instance = new (lookup(root, 'api.v1.instance.InstanceManager'))(address, insecure);
  type Fn = (...args: unknown[]) => unknown;
  return {
    challenge,
    instance,
    unary: (client, method) => (request) =>
      new Promise((resolve, reject) => {
        (client[method] as Fn).call(
          client,
          request,
          (err: ServiceError | null, res: Record<string, unknown>) =>
            err ? reject(err) : resolve(res),
        );
      }),
    stream: (client, method) => (request) =>
      new Promise((resolve, reject) => {
        const items: Record<string, unknown>[] = [];
        const call = (client[method] as Fn).call(client, request) as ClientReadableStream<
          Record<string, unknown>
        >;
        call.on('data', (item: Record<string, unknown>) => items.push(item));
        call.on('error', reject);
        call.on('end', () => resolve(items));
      }),
    close: () => {
      challenge.close();
      instance.close();
    },
  };
}

/** The google.rpc.Status a gRPC error carries in `grpc-status-details-bin`, if any. */
export function statusDetails(metadata: Metadata | undefined): RpcStatusJson | undefined {
  const [bytes] = metadata?.get('grpc-status-details-bin') ?? [];
  return bytes instanceof Buffer ? decodeRpcStatus(bytes) : undefined;
}

import type { GrpcOptions } from '@nestjs/microservices';
import { Transport } from '@nestjs/microservices';
import { join } from 'node:path';
import type { GrpcConnectionSink } from './grpc-connection-sink';

/** Root of our .proto files (`proto/` at the package root, beside `dist/` and `src/`). */
export const PROTO_ROOT = join(__dirname, '..', '..', '..', 'proto');

/** The API packages and their files, relative to {@link PROTO_ROOT}. */
export const PROTO_PACKAGES = [
  'api.v1.challenge',
  'api.v1.instance',
  'api.v1.flag',
  'api.v1.event',
];
export const PROTO_FILES = [
  'api/v1/challenge/challenge.proto',
  'api/v1/instance/instance.proto',
  'api/v1/flag/flag.proto',
  'api/v1/event/event.proto',
  'api/v1/common/common.proto',
];

/**
 * proto-loader options: camelCase field names (the controllers and wire codecs use JSON names),
 * int64 and enums as strings, defaults filled in, virtual oneof fields for proto3 `optional`.
 * The google/protobuf well-known types resolve from protobufjs's bundled copies.
 */
export const PROTO_LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  arrays: true,
  objects: true,
  includeDirs: [PROTO_ROOT],
};

/**
 * Nest gRPC microservice options for ChallengeStore, InstanceManager and EventStream.
 *
 * Nest's gRPC server insists on binding an address of its own, but clients reach it through the
 * single public port (single-port.ts). So it binds a unix socket in a private temporary
 * directory, and the moment Nest hands us the grpc-js server (`onLoadPackageDefinition`), the
 * sink opens a connection injector on it and closes that socket: nothing but the public port
 * ever listens, and no bytes are copied between sockets.
 */
export function grpcOptions(sink: GrpcConnectionSink): GrpcOptions {
  return {
    transport: Transport.GRPC,
    options: {
      package: PROTO_PACKAGES,
      protoPath: PROTO_FILES,
      url: sink.bindUrl,
      loader: PROTO_LOADER_OPTIONS,
      onLoadPackageDefinition: (_definition: unknown, server: unknown) => sink.attach(server),
    },
  };
}

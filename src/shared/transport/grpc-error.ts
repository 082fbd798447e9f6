// This file and grpc.options.ts are the only shared code that speaks grpc-js: the status trailer
// needs grpc-js's own Metadata class (grpc-js serialises only that type).
// eslint-disable-next-line no-restricted-imports
import { Metadata } from '@grpc/grpc-js';
import type { RpcStatus } from '../errors/error-status';
import { encodeRpcStatus } from './rpc-status';

/** Trailer key of the binary google.rpc.Status (read by grpc-go's `status.FromError`). */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

/** The error object grpc-js turns into a status: code, message and the rich-status trailer. */
export interface GrpcErrorObject {
  code: number;
  message: string;
  details: string;
  metadata: Metadata;
}

/**
 * The error a gRPC handler emits for a status. grpc-js reads `code`, `details` (the status
 * message) and `metadata` (sent as trailers) from it.
 */
export function toGrpcError(status: RpcStatus): GrpcErrorObject {
  const metadata = new Metadata();
  if (status.details.length > 0) metadata.set(STATUS_DETAILS_KEY, encodeRpcStatus(status));
  return { code: status.code, message: status.message, details: status.message, metadata };
}

import { Injectable, Logger } from '@nestjs/common';
import { GrpcCode, type RpcStatus } from '../errors/error-status';
import { ServiceMetrics } from '../telemetry';
import { toRpcStatus } from './error-normalizer';

/**
 * Where every failed request ends, whichever way it is answered: the exception filter (unary
 * calls, gRPC streams) and the NDJSON writer (REST streams, which answer in-band). One place
 * turns the error into the status the client sees (server faults logged under an `error_id`) and
 * counts it in `failures`.
 */
@Injectable()
export class FailureReporter {
  private readonly logger = new Logger('Transport');

  constructor(private readonly metrics: ServiceMetrics) {}

  /** The status a client gets for `error`, counted in `failures` for `transport`. */
  report(error: unknown, transport: 'http' | 'grpc'): RpcStatus {
    const status = toRpcStatus(error, this.logger);
    const info = status.details.find((d) => d.type === 'ErrorInfo');
    // `failures` counter: the ErrorInfo reason, else the gRPC code's name (e.g. NOT_FOUND).
    this.metrics.recordFailure(
      info?.type === 'ErrorInfo' ? info.reason : codeName(status.code),
      transport,
    );
    return status;
  }
}

const codeName = (code: GrpcCode): string =>
  Object.entries(GrpcCode).find(([, v]) => v === code)?.[0] ?? String(code);

import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { throwError, type Observable } from 'rxjs';
import { GrpcCode, HTTP_FROM_GRPC } from '../errors/error-status';
import { FailureReporter } from './failure-reporter';
import { toGrpcError } from './grpc-error';
import { rpcStatusToJson } from './rpc-status';

/** REST lives under this prefix; elsewhere a miss is Go's plain-text 404, as upstream's mux. */
const API_PREFIX = '/api/v1/';

/**
 * The one exception filter, registered through APP_FILTER and inherited by the gRPC
 * microservice (`inheritAppConfig`), so both transports give the same code, message and details.
 */
@Catch()
export class DomainErrorFilter implements ExceptionFilter {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly failures: FailureReporter,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): Observable<never> | void {
    const status = this.failures.report(exception, host.getType() === 'rpc' ? 'grpc' : 'http');
    if (host.getType() === 'rpc') return throwError(() => toGrpcError(status));

    const { httpAdapter } = this.adapterHost;
    const http = host.switchToHttp();
    const res: unknown = http.getResponse();
    // A streamed answer has started: its own writer reports the failure in-band.
    if (httpAdapter.isHeadersSent(res)) {
      httpAdapter.end(res);
      return;
    }
    const url = String(httpAdapter.getRequestUrl(http.getRequest()));
    if (
      status.code === GrpcCode.NOT_FOUND &&
      status.details.length === 0 &&
      !url.startsWith(API_PREFIX)
    ) {
      httpAdapter.setHeader(res, 'Content-Type', 'text/plain; charset=utf-8');
      httpAdapter.reply(res, '404 page not found\n', 404);
      return;
    }
    httpAdapter.reply(res, rpcStatusToJson(status), HTTP_FROM_GRPC[status.code]);
  }
}

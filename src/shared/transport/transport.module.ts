import { Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR } from '@nestjs/core';
import { DomainErrorFilter } from './domain-error.filter';
import { DrainInterceptor, DrainState } from './drain';
import { FailureReporter } from './failure-reporter';
import { SinglePortServer } from './single-port';

/**
 * What both API transports share: the one exception filter (for REST and, through
 * `inheritAppConfig`, gRPC), the failure reporting it shares with the REST streams, the drain
 * interceptor (calls in flight, refusals on shutdown) and the single public port. Imported once
 * by AppModule; global so that the controllers of every context and the probes see the one
 * DrainState and FailureReporter.
 */
@Global()
@Module({
  providers: [
    { provide: APP_FILTER, useClass: DomainErrorFilter },
    FailureReporter,
    DrainState,
    { provide: APP_INTERCEPTOR, useClass: DrainInterceptor },
    SinglePortServer,
  ],
  exports: [SinglePortServer, DrainState, FailureReporter],
})
export class TransportModule {}

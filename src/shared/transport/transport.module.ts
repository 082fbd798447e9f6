import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { DomainErrorFilter } from './domain-error.filter';
import { SinglePortServer } from './single-port';

/**
 * What both API transports share: the one exception filter (for REST and, through
 * `inheritAppConfig`, gRPC) and the single public port. Imported once by AppModule.
 */
@Module({
  providers: [{ provide: APP_FILTER, useClass: DomainErrorFilter }, SinglePortServer],
  exports: [SinglePortServer],
})
export class TransportModule {}

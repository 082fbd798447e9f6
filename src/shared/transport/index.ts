export { DomainErrorFilter } from './domain-error.filter';
export { DrainState, ServedWhileDraining } from './drain';
export { gracefulShutdown } from './graceful-shutdown';
export { API_APP_OPTIONS, SinglePortServer, startApiServer } from './single-port';
export { TransportModule } from './transport.module';

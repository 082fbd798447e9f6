export { DomainErrorFilter } from './domain-error.filter';
export { API_APP_OPTIONS, SinglePortServer, startApiServer } from './single-port';
export { TransportModule } from './transport.module';

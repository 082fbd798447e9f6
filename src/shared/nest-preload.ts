/**
 * Imported by main.ts before anything loads Nest.
 *
 * When @nestjs/common loads, its Logger and ConsoleLogger each build an Intl.DateTimeFormat for
 * the timestamps of Nest's coloured console format. Building the first one loads ICU's locale,
 * calendar and time zone data: about 7 MiB of resident memory and some start-up time, for
 * formatters that the service's JSON logger never calls. Those two are built at their first use
 * instead; nothing else is deferred.
 *
 * @nestjs/core is the first ES module to import `node:http`: it is loaded here while that
 * module's undici-backed getters are set aside (http-facade-without-websocket.ts), about 14 MiB.
 */
import { withDeferredDateTimeFormats } from './deferred-date-time-format';
import { withoutHttpWebSocketExports } from './http-facade-without-websocket';

// eslint-disable-next-line @typescript-eslint/no-require-imports
withDeferredDateTimeFormats(() => require('@nestjs/common') as unknown);
// eslint-disable-next-line @typescript-eslint/no-require-imports
withoutHttpWebSocketExports(() => require('@nestjs/core') as unknown);

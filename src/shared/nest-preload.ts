/**
 * Imported by main.ts before anything loads Nest. When @nestjs/common loads, its Logger and
 * ConsoleLogger each build an Intl.DateTimeFormat for the timestamps of Nest's coloured console
 * format. Building the first one loads ICU's locale, calendar and time zone data: about 7 MiB of
 * resident memory and some start-up time, for formatters that the service's JSON logger never
 * calls. Those two are built at their first use instead; nothing else is deferred.
 */
import { withDeferredDateTimeFormats } from './deferred-date-time-format';

// eslint-disable-next-line @typescript-eslint/no-require-imports
withDeferredDateTimeFormats(() => require('@nestjs/common') as unknown);

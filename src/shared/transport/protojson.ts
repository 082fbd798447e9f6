import { z } from 'zod';
import { parseProtojsonDuration } from '../duration';
import { InvalidArgumentError } from '../errors';
import type { DurationGrpc, TimestampGrpc } from './api-messages.generated';

/**
 * protojson, the way upstream's REST gateway speaks it (Go protojson, `EmitUnpopulated: true`,
 * `DiscardUnknown: true`), for the handful of types our API uses. The two `*.wire.ts` codecs
 * build on these; nothing here knows about challenges or instances.
 */

/** Largest REST body we parse; above, the request fails with INVALID_ARGUMENT. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Largest string fields, in UTF-8 bytes (upstream has no limit). Ids are echoed in error details
 * and in gRPC trailers, which HTTP/2 peers bound (64 KiB in Node), so a huge one could stall a
 * connection; each limit leaves room for every value a real client sends.
 */
export const MAX_ID_BYTES = 256;
/** An OCI reference: 255 for registry and repository, a tag (128) and a sha512 digest (135). */
export const MAX_SCENARIO_BYTES = 1024;
export const MAX_ADDITIONAL_KEY_BYTES = 256;
/**
 * All keys and values of one `additional` map together. The merged map reaches the scenario
 * program in one environment variable (`PULUMI_CONFIG`), which Linux bounds at 128 KiB.
 */
export const MAX_ADDITIONAL_BYTES = 32 * 1024;

/** google.protobuf.Timestamp range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
const MIN_TIMESTAMP_SECONDS = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS = 253_402_300_799;
/** google.protobuf.Duration range: ±10 000 years. */
const MAX_DURATION_SECONDS = 315_576_000_000;

/** protojson's JSON name → proto name rule: each capital becomes `_` + lower case. */
export function camelToSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The reverse, as protoc computes JSON names: `_x` becomes `X`. */
export function snakeToCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// Duration

/**
 * Formats milliseconds as protojson does: seconds with an `s` suffix and 0, 3, 6 or 9
 * fractional digits (`600s`, `1.500s`).
 */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  const seconds = Math.trunc(abs / 1000);
  const millis = abs % 1000;
  return millis === 0
    ? `${sign}${seconds}s`
    : `${sign}${seconds}.${String(millis).padStart(3, '0')}s`;
}

/**
 * Parses protojson Duration text (`"600s"`, `"1.5s"`, `"-2s"`) to milliseconds; sub-millisecond
 * digits are dropped. Returns a problem text instead when the text is not a Duration.
 */
export function parseDuration(text: string): number | { problem: string } {
  const ms = parseProtojsonDuration(text);
  if (ms === undefined) {
    return { problem: `"${text}" is not a duration (use seconds with an s suffix: "600s")` };
  }
  if (Math.trunc(Math.abs(ms) / 1000) > MAX_DURATION_SECONDS) {
    return { problem: `"${text}" is out of range` };
  }
  return ms;
}

/** Milliseconds to a proto-loader Duration object. */
export function durationToGrpc(ms: number): DurationGrpc {
  const seconds = Math.trunc(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** A proto-loader Duration object to milliseconds, or a problem text. */
export function durationFromGrpc(d: DurationGrpc): number | { problem: string } {
  const seconds = Number(d.seconds);
  const nanos = d.nanos;
  if (!Number.isInteger(seconds) || Math.abs(seconds) > MAX_DURATION_SECONDS) {
    return { problem: 'seconds out of range' };
  }
  if (!Number.isInteger(nanos) || Math.abs(nanos) > 999_999_999) {
    return { problem: 'nanos out of range' };
  }
  if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    return { problem: 'seconds and nanos have different signs' };
  }
  return seconds * 1000 + Math.trunc(nanos / 1_000_000);
}

// ---------------------------------------------------------------------------------------------
// Timestamp

const TIMESTAMP_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Formats a date as protojson does: RFC 3339 in UTC with `Z`, and no fractional digits when the
 * date falls on a whole second (a JS date has milliseconds, so 0 or 3 digits).
 */
export function formatTimestamp(date: Date): string {
  return date.toISOString().replace('.000Z', 'Z');
}

/**
 * Parses RFC 3339 text (any offset, converted to UTC; up to 9 fractional digits, kept to the
 * millisecond). Returns a problem text instead when the text is not a valid Timestamp.
 */
export function parseTimestamp(text: string): Date | { problem: string } {
  const bad = { problem: `"${text}" is not an RFC 3339 timestamp (e.g. "2026-05-01T10:00:00Z")` };
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return bad;
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  const parts = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [year, month, day, hour, minute, second] = parts;
  const base = new Date(0);
  base.setUTCFullYear(year, month - 1, day);
  base.setUTCHours(hour, minute, second, Number((frac ?? '').padEnd(9, '0').slice(0, 3)));
  // Date normalises overflow (Feb 30 → Mar 2); refuse instead of guessing.
  if (
    base.getUTCFullYear() !== year ||
    base.getUTCMonth() !== month - 1 ||
    base.getUTCDate() !== day ||
    base.getUTCHours() !== hour ||
    base.getUTCMinutes() !== minute ||
    base.getUTCSeconds() !== second
  ) {
    return bad;
  }
  let ms = base.getTime();
  if (offset && offset !== 'Z') {
    const sign = offset.startsWith('-') ? -1 : 1;
    const oh = Number(offset.slice(1, 3));
    const om = Number(offset.slice(4, 6));
    if (oh > 23 || om > 59) return bad;
    ms -= sign * (oh * 60 + om) * 60_000;
  }
  const seconds = Math.floor(ms / 1000);
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
    return { problem: `"${text}" is out of range` };
  }
  return new Date(ms);
}

/** A date to a proto-loader Timestamp object. */
export function timestampToGrpc(date: Date): TimestampGrpc {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** A proto-loader Timestamp object to a date, or a problem text. */
export function timestampFromGrpc(t: TimestampGrpc): Date | { problem: string } {
  const seconds = Number(t.seconds);
  if (
    !Number.isInteger(seconds) ||
    seconds < MIN_TIMESTAMP_SECONDS ||
    seconds > MAX_TIMESTAMP_SECONDS
  ) {
    return { problem: 'seconds out of range' };
  }
  if (!Number.isInteger(t.nanos) || t.nanos < 0 || t.nanos > 999_999_999) {
    return { problem: 'nanos out of range' };
  }
  return new Date(seconds * 1000 + Math.trunc(t.nanos / 1_000_000));
}

// ---------------------------------------------------------------------------------------------
// int64

const INT_TEXT = /^-?\d+$/;

/**
 * Reads an int64 the way protojson does: a JSON number or a decimal string. We keep int64 in a JS
 * number, so values beyond 2^53 are refused rather than silently rounded.
 */
export function parseInt64(value: unknown): number | { problem: string } {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && INT_TEXT.test(value)) n = Number(value);
  else return { problem: 'must be an integer (a JSON number or a decimal string)' };
  if (!Number.isInteger(n)) return { problem: 'must be an integer' };
  if (!Number.isSafeInteger(n)) return { problem: 'is out of range' };
  return n;
}

// ---------------------------------------------------------------------------------------------
// FieldMask

/** One JSON FieldMask path: lowerCamelCase segments separated by dots. */
const MASK_PATH_JSON = /^[a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*$/;

/**
 * Parses a JSON FieldMask (`"timeout,until"`) to proto paths (`["timeout", "until"]`).
 * As protojson, it refuses underscores and anything that is not a lowerCamelCase path
 * (`"timeout, until"` fails on the space); `""` is the empty mask.
 */
export function parseFieldMask(text: string): string[] | { problem: string } {
  if (text === '') return [];
  const paths: string[] = [];
  for (const path of text.split(',')) {
    if (path.includes('_')) {
      return { problem: `path "${path}" contains "_"; use lowerCamelCase (e.g. updateStrategy)` };
    }
    if (!MASK_PATH_JSON.test(path)) {
      return { problem: `"${path}" is not a lowerCamelCase field path` };
    }
    paths.push(camelToSnake(path));
  }
  return paths;
}

// ---------------------------------------------------------------------------------------------
// zod schemas for JSON field values

/** Attaches a problem text to the zod context, or passes the value through. */
function check<T>(result: T | { problem: string }, ctx: z.RefinementCtx): T {
  if (typeof result === 'object' && result !== null && 'problem' in result) {
    ctx.addIssue({ code: 'custom', message: result.problem });
    return z.NEVER;
  }
  return result;
}

/** JSON field value schemas, one per proto type, producing our internal representation. */
export const json = {
  string: z.string({ error: 'must be a string' }),
  int64: z.unknown().transform((v, ctx) => check(parseInt64(v), ctx)),
  duration: z
    .string({ error: 'must be a duration string such as "600s"' })
    .transform((v, ctx) => check(parseDuration(v), ctx)),
  timestamp: z
    .string({ error: 'must be an RFC 3339 timestamp string' })
    .transform((v, ctx) => check(parseTimestamp(v), ctx)),
  fieldMask: z
    .string({ error: 'must be a comma-separated string of lowerCamelCase paths' })
    .transform((v, ctx) => check(parseFieldMask(v), ctx)),
  stringMap: z.record(z.string(), z.string({ error: 'values must be strings' }), {
    error: 'must be an object of strings',
  }),
  /** An enum: its value name, or its number. */
  enumOf<const N extends string>(names: readonly N[]) {
    return z.unknown().transform((v, ctx): N => {
      const name = typeof v === 'number' ? names[v] : names.find((n) => n === v);
      if (name === undefined) {
        ctx.addIssue({ code: 'custom', message: `must be one of ${names.join(', ')}` });
        return z.NEVER;
      }
      return name;
    });
  },
} as const;

/**
 * A decoding table for the JSON message `M` (a generated `*Json` type): one schema per field, by
 * JSON name, so a field added to the proto and not decoded fails the build.
 */
export type FieldTable<M> = { readonly [K in keyof M]-?: z.ZodType };

/** The decoded fields of a message: each present and non-null field, by its JSON name. */
export type DecodedFields<S extends Record<string, z.ZodType>> = {
  [K in keyof S]?: z.output<S[K]>;
};

/**
 * Decodes a JSON request message as protojson does with `DiscardUnknown`: each field by its
 * lowerCamelCase JSON name or its snake_case proto name, `null` meaning unset, unknown fields
 * ignored, an absent or empty body meaning the empty message.
 * @throws InvalidArgumentError naming the first bad field by its JSON name.
 */
export function decodeJsonMessage<S extends Record<string, z.ZodType>>(
  body: unknown,
  fields: S,
): DecodedFields<S> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidArgumentError('body', 'must be a JSON object');
  }
  const source = body as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [jsonName, schema] of Object.entries(fields)) {
    const protoName = camelToSnake(jsonName);
    const hasJson = Object.hasOwn(source, jsonName);
    const hasProto = protoName !== jsonName && Object.hasOwn(source, protoName);
    if (hasJson && hasProto) {
      throw new InvalidArgumentError(jsonName, `given twice (as ${jsonName} and ${protoName})`);
    }
    const raw = hasJson ? source[jsonName] : hasProto ? source[protoName] : undefined;
    if (raw === undefined || raw === null) continue;
    out[jsonName] = parseValue(jsonName, schema, raw);
  }
  return out as DecodedFields<S>;
}

/**
 * Runs one field value through its schema.
 * @throws InvalidArgumentError naming the field.
 */
export function parseValue<T extends z.ZodType>(
  field: string,
  schema: T,
  raw: unknown,
): z.output<T> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` (at ${issue.path.join('.')})` : '';
    throw new InvalidArgumentError(field, `${issue?.message ?? 'is invalid'}${where}`);
  }
  return parsed.data;
}

/**
 * Requires a non-empty identifier of at most {@link MAX_ID_BYTES} (upstream accepts empty and
 * unbounded ids; we refuse them: they make unreachable records and unbounded errors).
 * @throws InvalidArgumentError naming the field.
 */
export function requireId(field: string, value: string | undefined): string {
  if (value === undefined || value === '') {
    throw new InvalidArgumentError(field, 'must not be empty');
  }
  return requireMaxBytes(field, value, MAX_ID_BYTES);
}

/**
 * Requires a string of at most `max` UTF-8 bytes; the problem never echoes the value.
 * @throws InvalidArgumentError naming the field.
 */
export function requireMaxBytes(field: string, value: string, max: number): string {
  if (Buffer.byteLength(value, 'utf8') > max) {
    throw new InvalidArgumentError(field, `must be at most ${max} bytes`);
  }
  return value;
}

/**
 * Requires an `additional` map within {@link MAX_ADDITIONAL_KEY_BYTES} per key and
 * {@link MAX_ADDITIONAL_BYTES} in all; returns a copy.
 * @throws InvalidArgumentError naming the field.
 */
export function requireAdditional(
  field: string,
  map: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  let total = 0;
  for (const [key, value] of Object.entries(map ?? {})) {
    const keyBytes = Buffer.byteLength(key, 'utf8');
    if (keyBytes > MAX_ADDITIONAL_KEY_BYTES) {
      throw new InvalidArgumentError(
        field,
        `keys must be at most ${MAX_ADDITIONAL_KEY_BYTES} bytes`,
      );
    }
    total += keyBytes + Buffer.byteLength(value, 'utf8');
  }
  if (total > MAX_ADDITIONAL_BYTES) {
    throw new InvalidArgumentError(
      field,
      `keys and values together must be at most ${MAX_ADDITIONAL_BYTES} bytes`,
    );
  }
  return { ...map };
}

/**
 * Requires a strictly positive duration, when one is given (a zero or negative timeout would
 * expire instances at once).
 * @throws InvalidArgumentError naming the field.
 */
export function requirePositiveDuration(field: string, ms: number | undefined): number | undefined {
  if (ms !== undefined && ms <= 0) {
    throw new InvalidArgumentError(field, 'must be a positive duration of at least 1ms');
  }
  return ms;
}

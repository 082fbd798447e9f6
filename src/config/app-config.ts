import { availableParallelism, homedir, tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  DEFAULT_OCI_LIMITS,
  DEFAULT_OCI_REQUEST_TIMEOUT_MS,
  DEFAULT_OCI_TRANSFER_TIMEOUT_MS,
} from '../adapters/oci/http-oci-registry.options';
import { parseGoDuration } from '../shared/duration';

/** Log levels accepted by upstream (zap names); `dpanic`, `panic` and `fatal` all mean "errors only". */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'dpanic', 'panic', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Booleans as Go's strconv.ParseBool reads them (upstream parses its flags that way), so an
 * operator's existing `SWAGGER=1` or `OCI_INSECURE=True` keeps working.
 */
const goBool = z
  .string()
  .trim()
  .transform((raw, ctx) => {
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
    if (['', '0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
    ctx.addIssue({ code: 'custom', message: `"${raw}" is not a boolean (use true or false)` });
    return z.NEVER;
  });

const port = z
  .string()
  .trim()
  .regex(/^\d+$/, 'must be a port number')
  .transform(Number)
  .pipe(
    z
      .number()
      .int()
      .min(1, 'must be between 1 and 65535')
      .max(65535, 'must be between 1 and 65535'),
  );

/**
 * Durations written as Go's time.ParseDuration reads them (`90s`, `10m`, `1h30m`, `500ms`), the
 * style of upstream's janitor `TICKER`; must be positive, or `0` where `zeroMeans` says what 0
 * does.
 */
const goDurationOf = (zeroMeans?: string) =>
  z
    .string()
    .trim()
    .transform((raw, ctx) => {
      if (zeroMeans !== undefined && raw === '0') return 0;
      const ms = parseGoDuration(raw);
      if (ms === undefined || ms <= 0) {
        ctx.addIssue({
          code: 'custom',
          message:
            zeroMeans === undefined
              ? `"${raw}" is not a positive duration (e.g. 30s, 10m, 1h)`
              : `"${raw}" is not a positive duration (e.g. 1m) or 0 (${zeroMeans})`,
        });
        return z.NEVER;
      }
      return ms;
    });

const goDuration = goDurationOf();

// The settings' duration syntax, for what checks values written for these variables (manifests).
export { parseGoDuration };

const byteSize = z
  .string()
  .trim()
  .transform((raw, ctx) => {
    const m = /^(\d+)\s*(B|KiB|MiB|GiB)?$/.exec(raw);
    if (!m || Number(m[1]) <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${raw}" is not a positive size (e.g. 64MiB)` });
      return z.NEVER;
    }
    const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[2] ?? 'B'] ?? 1;
    return Number(m[1]) * unit;
  });

const positiveInt = z
  .string()
  .trim()
  .regex(/^\d+$/, 'must be a positive integer')
  .transform(Number)
  .pipe(z.number().int().min(1, 'must be a positive integer'));

const directory = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .transform((p) => (isAbsolute(p) ? p : resolve(p)));

/**
 * Every setting of the service, by its environment variable. Names and defaults are upstream's
 * (chall-manager v0.6.6 `cmd/chall-manager/main.go`); new settings are named in the same style.
 */
const envSchema = z.object({
  /** Port serving gRPC (HTTP/2) and REST (HTTP/1.1). */
  PORT: port.default(8080),
  /** Data directory (challenges, instances, Pulumi state). Share it between replicas. */
  DIR: directory.default(join(tmpdir(), 'chall-manager')),
  /** Scenario cache (pulled OCI artifacts, compiled programs). Only saves time; never authoritative. */
  CACHE: directory.default(join(homedir(), '.cache', 'chall-manager')),
  /** Minimum level of the logs written to stdout. */
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  /** Serve the Swagger UI at /swagger/ and the OpenAPI document at /swagger/swagger.json. */
  SWAGGER: goBool.default(false),
  /**
   * etcd endpoint (host:port), or a comma-separated list of a cluster's members. When set, locks
   * are distributed through etcd.
   */
  ETCD_ENDPOINT: z.string().trim().default(''),
  /** TTL of the lease every etcd lock of a replica is bound to: a dead replica's locks free within it. */
  ETCD_LEASE_TTL: z
    .string()
    .trim()
    .regex(/^\d+s?$/, 'must be a whole number of seconds (e.g. 10s)')
    .transform((raw) => Number(raw.replace(/s$/, '')))
    .pipe(z.number().int().min(2, 'must be at least 2 seconds'))
    .default(10),
  ETCD_USERNAME: z.string().default(''),
  ETCD_PASSWORD: z.string().default(''),
  /** Talk plain HTTP to registries. */
  OCI_INSECURE: goBool.default(false),
  /** Basic credentials for registries; used only when both are set. */
  OCI_USERNAME: z.string().default(''),
  OCI_PASSWORD: z.string().default(''),
  /** Largest file of a scenario artifact. */
  OCI_MAX_LAYER_SIZE: byteSize.default(DEFAULT_OCI_LIMITS.maxLayerBytes),
  /** Most files in a scenario artifact. */
  OCI_MAX_LAYERS: positiveInt.default(DEFAULT_OCI_LIMITS.maxLayers),
  /** Largest scenario artifact (sum of its files). */
  OCI_MAX_TOTAL_SIZE: byteSize.default(DEFAULT_OCI_LIMITS.maxTotalBytes),
  /** Bound of one registry request (headers, then between two chunks). */
  OCI_TIMEOUT: goDuration.default(DEFAULT_OCI_REQUEST_TIMEOUT_MS),
  /** Bound of a whole pull or push (a registry dripping bytes within OCI_TIMEOUT is cut off). */
  OCI_TRANSFER_TIMEOUT: goDuration.default(DEFAULT_OCI_TRANSFER_TIMEOUT_MS),
  /** Passphrase encrypting the secrets of the stacks' state (Pulumi's own variable name). */
  PULUMI_CONFIG_PASSPHRASE: z.string().default(''),
  /** Bound of one `pulumi up`, preview or destroy; past it the operation is cancelled and cleaned up. */
  IAC_TIMEOUT: goDuration.default(10 * 60_000),
  /**
   * How long a new instance of a scenario that exports `readiness` gets to answer its probes
   * before it is removed (and the create fails with INSTANCE_NOT_READY).
   */
  READINESS_TIMEOUT: goDuration.default(60_000),
  /** After a cancel, how long Pulumi gets to stop before its processes are killed. */
  IAC_CANCEL_GRACE: goDuration.default(30_000),
  /** Bound of compiling a Go scenario. */
  IAC_COMPILE_TIMEOUT: goDuration.default(5 * 60_000),
  /**
   * Most IaC operations (up, preview, destroy) running at once; the others wait in line, player
   * requests before pool spin-ups. Each runs a Pulumi CLI, a language host and the program.
   */
  IAC_CONCURRENCY: positiveInt.default(availableParallelism()),
  /** Largest pool (`min`) a challenge may ask for; above it the request is refused. */
  POOL_MAX_SIZE: positiveInt.default(100),
  /**
   * Period of the janitor's sweep (after upstream's janitor `TICKER`); `0` turns the janitor off.
   */
  JANITOR_TICKER: goDurationOf('off').default(60_000),
  /**
   * On SIGTERM, how long requests in flight may run before they are cancelled (their IaC work
   * then gets IAC_CANCEL_GRACE to stop and is cleaned up).
   */
  SHUTDOWN_GRACE: goDuration.default(30_000),
  /** Cron expression for the janitor instead of a period (upstream's CronJob default: every minute). */
  JANITOR_CRON: z
    .string()
    .trim()
    .refine(
      (raw) => raw.split(/\s+/).length >= 5 && raw.split(/\s+/).length <= 6,
      'must be a cron expression of 5 or 6 fields',
    )
    .optional(),
  /**
   * Key of the flag records' HMAC (at least 16 bytes). Unset: one is generated once and kept in
   * DIR/flag/key, so every replica sharing DIR uses the same.
   */
  FLAG_HASH_KEY: z
    .string()
    .refine((raw) => Buffer.byteLength(raw, 'utf8') >= 16, 'must be at least 16 bytes')
    .optional(),
  /** How long the flags of a deleted instance still check as valid. */
  FLAG_RETENTION: goDuration.default(168 * 3_600_000),
  /** Flag checks a source may make per FLAG_CHECK_WINDOW (per replica). */
  FLAG_CHECK_LIMIT: positiveInt.default(10),
  FLAG_CHECK_WINDOW: goDuration.default(60_000),
  /** Lifecycle events kept in the journal (DIR/events) for watchers resuming; older ones are pruned. */
  EVENTS_JOURNAL_SIZE: positiveInt.default(10_000),
  /** Period of the keep-alive comments of the Server-Sent Events stream. */
  EVENTS_KEEPALIVE: goDuration.default(15_000),
  /** How long before an instance's `until` its `instance.expiring` event is published. */
  EVENTS_EXPIRING_LEAD: goDuration.default(5 * 60_000),
  /** URL every lifecycle event is POSTed to (requires WEBHOOK_SECRET). */
  WEBHOOK_URL: z
    .string()
    .trim()
    .refine((raw) => {
      try {
        return ['http:', 'https:'].includes(new URL(raw).protocol);
      } catch {
        return false;
      }
    }, 'must be an http:// or https:// URL')
    .optional(),
  /** Key of the HMAC-SHA256 signature of every webhook delivery. */
  WEBHOOK_SECRET: z.string().default(''),
});

/**
 * Variables a scenario program does not see (blanked in its environment): the service's own
 * credentials. Everything else of the service's environment is passed through, as upstream does
 * (KUBECONFIG, cloud credentials, proxies...).
 */
export const HIDDEN_FROM_SCENARIOS = [
  'WEBHOOK_SECRET',
  'OCI_USERNAME',
  'OCI_PASSWORD',
  'ETCD_USERNAME',
  'ETCD_PASSWORD',
  'PULUMI_CONFIG_PASSPHRASE',
  'FLAG_HASH_KEY',
];

const splitEndpoints = (raw: string): string[] =>
  raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');

export type RawEnv = Record<string, string | undefined>;

/** A configuration value that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * The service's configuration, parsed and validated once at boot, then frozen. The class is the
 * DI token; nothing else in the code reads the environment.
 */
export class AppConfig {
  readonly port: number;
  readonly dir: string;
  readonly cache: string;
  readonly logLevel: LogLevel;
  readonly swagger: boolean;
  readonly etcd: Readonly<{
    /** Empty when etcd is not configured (in-process locks). */
    endpoints: readonly string[];
    username: string;
    password: string;
    leaseTtlSeconds: number;
  }>;
  readonly oci: Readonly<{
    insecure: boolean;
    username: string;
    password: string;
    maxLayerBytes: number;
    maxLayers: number;
    maxTotalBytes: number;
    requestTimeoutMs: number;
    transferTimeoutMs: number;
  }>;
  readonly iac: Readonly<{
    passphrase: string;
    operationTimeoutMs: number;
    cancelGraceMs: number;
    compileTimeoutMs: number;
    concurrency: number;
    /** Environment of the Pulumi CLI and scenario programs (see HIDDEN_FROM_SCENARIOS). */
    programEnv: Readonly<Record<string, string>>;
  }>;

  /** Readiness probes of new instances (the scenario's `readiness` output). */
  readonly readiness: Readonly<{ timeoutMs: number }>;
  readonly pool: Readonly<{ maxSize: number }>;
  readonly janitor: Readonly<{ tickerMs: number; cron: string | undefined }>;
  /** SIGTERM: how long requests in flight may run before they are cancelled. */
  readonly shutdownGraceMs: number;
  readonly flags: Readonly<{
    /** Undefined: generated once under DIR. */
    hashKey: string | undefined;
    retentionMs: number;
    checkLimit: number;
    checkWindowMs: number;
  }>;
  readonly events: Readonly<{
    journalSize: number;
    keepAliveMs: number;
    expiringLeadMs: number;
    /** Absent: no webhook. */
    webhook: Readonly<{ url: string; secret: string }> | undefined;
  }>;

  private constructor(env: z.output<typeof envSchema>, raw: RawEnv) {
    this.port = env.PORT;
    this.dir = env.DIR;
    this.cache = env.CACHE;
    this.logLevel = env.LOG_LEVEL;
    this.swagger = env.SWAGGER;
    this.etcd = Object.freeze({
      endpoints: Object.freeze(splitEndpoints(env.ETCD_ENDPOINT)),
      username: env.ETCD_USERNAME,
      password: env.ETCD_PASSWORD,
      leaseTtlSeconds: env.ETCD_LEASE_TTL,
    });
    this.oci = Object.freeze({
      insecure: env.OCI_INSECURE,
      username: env.OCI_USERNAME,
      password: env.OCI_PASSWORD,
      maxLayerBytes: env.OCI_MAX_LAYER_SIZE,
      maxLayers: env.OCI_MAX_LAYERS,
      maxTotalBytes: env.OCI_MAX_TOTAL_SIZE,
      requestTimeoutMs: env.OCI_TIMEOUT,
      transferTimeoutMs: env.OCI_TRANSFER_TIMEOUT,
    });
    const programEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) if (v !== undefined) programEnv[k] = v;
    for (const k of HIDDEN_FROM_SCENARIOS) programEnv[k] = '';
    this.iac = Object.freeze({
      passphrase: env.PULUMI_CONFIG_PASSPHRASE,
      operationTimeoutMs: env.IAC_TIMEOUT,
      cancelGraceMs: env.IAC_CANCEL_GRACE,
      compileTimeoutMs: env.IAC_COMPILE_TIMEOUT,
      concurrency: env.IAC_CONCURRENCY,
      programEnv: Object.freeze(programEnv),
    });
    this.readiness = Object.freeze({ timeoutMs: env.READINESS_TIMEOUT });
    this.pool = Object.freeze({ maxSize: env.POOL_MAX_SIZE });
    this.janitor = Object.freeze({ tickerMs: env.JANITOR_TICKER, cron: env.JANITOR_CRON });
    this.shutdownGraceMs = env.SHUTDOWN_GRACE;
    this.flags = Object.freeze({
      hashKey: env.FLAG_HASH_KEY,
      retentionMs: env.FLAG_RETENTION,
      checkLimit: env.FLAG_CHECK_LIMIT,
      checkWindowMs: env.FLAG_CHECK_WINDOW,
    });
    this.events = Object.freeze({
      journalSize: env.EVENTS_JOURNAL_SIZE,
      keepAliveMs: env.EVENTS_KEEPALIVE,
      expiringLeadMs: env.EVENTS_EXPIRING_LEAD,
      webhook:
        env.WEBHOOK_URL === undefined
          ? undefined
          : Object.freeze({ url: env.WEBHOOK_URL, secret: env.WEBHOOK_SECRET }),
    });
    Object.freeze(this);
  }

  /** Parses the environment; throws a {@link ConfigError} naming every bad variable. */
  static fromEnv(raw: RawEnv): AppConfig {
    // Unset and empty mean the same to an operator writing a compose file or a manifest.
    const present = Object.fromEntries(
      Object.keys(envSchema.shape)
        .filter((k) => raw[k] !== undefined && raw[k] !== '')
        .map((k) => [k, raw[k]]),
    );
    const parsed = envSchema.safeParse(present);
    if (!parsed.success) {
      throw new ConfigError(
        parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`),
      );
    }
    const env = parsed.data;
    const problems: string[] = [];
    // upstream: cmd/chall-manager/main.go refuses etcd credentials without an endpoint.
    if (!env.ETCD_ENDPOINT && (env.ETCD_USERNAME || env.ETCD_PASSWORD)) {
      problems.push('ETCD_USERNAME/ETCD_PASSWORD: set ETCD_ENDPOINT too, or unset them');
    }
    for (const endpoint of splitEndpoints(env.ETCD_ENDPOINT)) {
      if (!/^[^\s/]+:\d+$/.test(endpoint.replace(/^http:\/\//, ''))) {
        problems.push(
          `ETCD_ENDPOINT: "${endpoint}" is not host:port (TLS endpoints are not supported)`,
        );
      }
    }
    // Unsigned deliveries could be forged by anyone who can reach the receiver.
    if (env.WEBHOOK_URL !== undefined && env.WEBHOOK_SECRET === '') {
      problems.push('WEBHOOK_SECRET: required with WEBHOOK_URL (deliveries are signed with it)');
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return new AppConfig(env, raw);
  }
}

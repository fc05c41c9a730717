import { DEFAULT_ROLLOUT_GROUP, parseStage } from '../../flags/migration-flags.js';
import type { FlagsConfig } from '../../flags/open-flags.js';
import type { MirrorMode } from '../dualwrite/mirror.js';
import { STAGES } from '../ports/stage.js';
import type { DatabaseConfig } from '../postgres/open-database.js';
import { SSL_MODES, type PostgresPoolOptions, type SslMode } from '../postgres/pool-config.js';
import { malformedUrlReason, redactUrl } from '../postgres/redact.js';

/**
 * Every environment variable dualwrite reads, parsed and validated here and nowhere else.
 * An empty variable means unset. A bad value fails at start with a ConfigError naming the
 * variable, the accepted values and the value given (a URL with its password hidden).
 */
export interface DualWriteConfig {
  /** DATABASE_URL and the POSTGRES_* pool settings, or embedded PGlite (PGLITE_DATA_DIR) when DATABASE_URL is unset. */
  readonly database: DatabaseConfig;
  /** Unleash, the flags file, DUAL_WRITE_MODE / READ_FROM_POSTGRES_PERCENT and the last known flags. */
  readonly flags: FlagsConfig;
  /** DUALWRITE_MIRROR_MODE: sync or async. Default sync. */
  readonly mirrorMode: MirrorMode;
  /** DUALWRITE_OUTBOX_PATH: the file outbox (and, with Redis, where failures go while Redis cannot be written). Default .dualwrite/outbox.jsonl. */
  readonly outboxPath: string;
  /** DUALWRITE_INTENT_LOG_PATH: the async mirror's write-ahead log. Default: intents.jsonl beside a file outbox, else .dualwrite/intents.jsonl. */
  readonly intentLogPath?: string;
  /** REDIS_URL: the outbox as a Redis stream, and the verifier's lock. Default unset. */
  readonly redisUrl?: string;
  /**
   * DUALWRITE_SHADOW_SAMPLE_RATE: share of reads compared on the other side, 0-1 (0 turns
   * shadow reads off). Default unset: each stage's default (5% in dual-write and read-shift,
   * where the evidence gate needs comparisons; see defaultShadowSampleRate).
   */
  readonly shadowSampleRate?: number;
  /** DUALWRITE_VERIFY_INTERVAL_MS: pause between background verifications; 0 disables them. Default 300000. */
  readonly verifyIntervalMs: number;
  /** DUALWRITE_REPAIR: repair persistent differences after each verification (true or false). Default false. */
  readonly repair: boolean;
  /**
   * DUALWRITE_LEASE_TTL_MS: lifetime of the runtime lease; a process killed without releasing
   * it keeps the next start waiting this long. Default 15000.
   */
  readonly leaseTtlMs: number;
  /** DUALWRITE_AUTO_RETREAT: send reads back to memory when PostgreSQL fails or slows past its thresholds (true or false). Default false. */
  readonly autoRetreat: boolean;
  /** DUALWRITE_ADMIN_TOKEN: bearer token of the admin API; without it the admin API refuses every call. */
  readonly adminToken?: string;
  /**
   * DUALWRITE_STATUS_TOKEN: read-only token of the example API's status page (which also
   * takes the admin token); it opens nothing else. Must differ from the admin token. Default unset.
   */
  readonly statusToken?: string;
  /** DUALWRITE_URL: where the CLI finds a running process's admin API. Default http://127.0.0.1:8080. */
  readonly adminUrl: string;
  /** PORT and HOST of the example API. Default 8080 on 127.0.0.1. */
  readonly http: { readonly port: number; readonly host: string };
}

/** A bad environment variable; `variable` names it. */
export class ConfigError extends TypeError {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads and validates the whole configuration from `env` (default process.env). */
export function loadConfig(env: Env = process.env): DualWriteConfig {
  const redisUrl = text(env, 'REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl))
    throw new ConfigError('REDIS_URL', `must start with redis:// or rediss://, got ${redactUrl(redisUrl)}`);
  return {
    database: databaseConfig(env),
    flags: flagsConfig(env),
    mirrorMode: oneOf(env, 'DUALWRITE_MIRROR_MODE', ['sync', 'async'] as const, 'sync'),
    outboxPath: text(env, 'DUALWRITE_OUTBOX_PATH') ?? '.dualwrite/outbox.jsonl',
    intentLogPath: text(env, 'DUALWRITE_INTENT_LOG_PATH'),
    redisUrl,
    shadowSampleRate: fraction(env, 'DUALWRITE_SHADOW_SAMPLE_RATE'),
    verifyIntervalMs: integer(env, 'DUALWRITE_VERIFY_INTERVAL_MS', 300_000, 0),
    repair: oneOf(env, 'DUALWRITE_REPAIR', ['true', 'false'] as const, 'false') === 'true',
    leaseTtlMs: integer(env, 'DUALWRITE_LEASE_TTL_MS', 15_000, 1000),
    autoRetreat: oneOf(env, 'DUALWRITE_AUTO_RETREAT', ['true', 'false'] as const, 'false') === 'true',
    ...adminApiConfig(env),
    statusToken: statusToken(env),
    http: { port: integer(env, 'PORT', 8080, 0, 65535), host: text(env, 'HOST') ?? '127.0.0.1' },
  };
}

/**
 * What the CLI needs to talk to a running process's admin API, without the rest of the
 * configuration (a CLI on an operator's machine has no DATABASE_URL or flag settings).
 */
export function adminApiConfig(env: Env = process.env): Pick<DualWriteConfig, 'adminUrl' | 'adminToken'> {
  return {
    adminUrl: httpUrl(env, 'DUALWRITE_URL') ?? 'http://127.0.0.1:8080',
    adminToken: text(env, 'DUALWRITE_ADMIN_TOKEN'),
  };
}

/** DUALWRITE_STATUS_TOKEN, refused when it is the admin token: a read-only token that opens the admin API would be a second admin token. */
function statusToken(env: Env): string | undefined {
  const token = text(env, 'DUALWRITE_STATUS_TOKEN');
  if (token !== undefined && token === text(env, 'DUALWRITE_ADMIN_TOKEN'))
    throw new ConfigError(
      'DUALWRITE_STATUS_TOKEN',
      'must differ from DUALWRITE_ADMIN_TOKEN (it is the read-only token of the status page)',
    );
  return token;
}

/** DUALWRITE_ALLOW_RESET: 1 lets `dualwrite db reset-test` replace a database whose name does not say it is a test database. Default 0. */
export function testResetAllowed(env: Env = process.env): boolean {
  return oneOf(env, 'DUALWRITE_ALLOW_RESET', ['1', '0'] as const, '0') === '1';
}

/** DATABASE_URL with the POSTGRES_* settings, or embedded PGlite when it is unset. */
export function databaseConfig(env: Env = process.env): DatabaseConfig {
  return text(env, 'DATABASE_URL') === undefined
    ? { kind: 'pglite', dataDir: text(env, 'PGLITE_DATA_DIR') }
    : { kind: 'postgres', pool: poolOptionsFromEnv(env) };
}

/**
 * The PostgreSQL pool settings (named after asyncpg's create_pool). SSL is said one way, as
 * libpq says it: `sslmode` in DATABASE_URL, else PGSSLMODE; default disable.
 */
export function poolOptionsFromEnv(env: Env = process.env): PostgresPoolOptions {
  const url = text(env, 'DATABASE_URL');
  if (url === undefined) throw new ConfigError('DATABASE_URL', 'is not set');
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new ConfigError('DATABASE_URL', `must start with postgres:// or postgresql://, got ${redactUrl(url)}`);
  const malformed = malformedUrlReason(url);
  if (malformed) throw new ConfigError('DATABASE_URL', malformed);
  if (text(env, 'POSTGRES_SSL_MODE') !== undefined) {
    throw new ConfigError(
      'POSTGRES_SSL_MODE',
      'is no longer read: say the SSL mode as libpq does, with ?sslmode= in DATABASE_URL or PGSSLMODE',
    );
  }
  const { connectionString, sslMode } = splitSslMode(url, env);
  const poolSize = integer(env, 'POSTGRES_POOL_SIZE', 20, 1);
  return {
    connectionString,
    poolSize,
    maxOverflow: integer(env, 'POSTGRES_MAX_OVERFLOW', 10, 0),
    minSize: Math.min(integer(env, 'POSTGRES_POOL_MIN_SIZE', 10, 0), poolSize),
    maxQueriesPerConnection: integer(env, 'POSTGRES_MAX_QUERIES', 50000, 1),
    idleLifetimeSeconds: integer(env, 'POSTGRES_IDLE_LIFETIME_SECONDS', 300, 1),
    statementTimeoutMs: integer(env, 'POSTGRES_STATEMENT_TIMEOUT_MS', 30000, 0),
    connectTimeoutMs: integer(env, 'POSTGRES_CONNECT_TIMEOUT_MS', 10000, 1),
    sslMode,
    ...optional('schema', identifier(env, 'POSTGRES_SCHEMA')),
  };
}

/**
 * The SSL mode from the URL's sslmode (which wins, as in libpq) or PGSSLMODE, and the URL
 * without it: node-postgres would otherwise apply its own reading of sslmode over ours.
 */
function splitSslMode(url: string, env: Env): { connectionString: string; sslMode: SslMode } {
  const query = url.indexOf('?');
  const params = new URLSearchParams(query >= 0 ? url.slice(query + 1) : '');
  const fromUrl = params.get('sslmode') ?? undefined;
  params.delete('sslmode');
  const rest = params.toString();
  const connectionString =
    fromUrl === undefined ? url : `${query >= 0 ? url.slice(0, query) : url}${rest ? `?${rest}` : ''}`;
  const [variable, value] =
    fromUrl !== undefined ? ['DATABASE_URL sslmode', fromUrl] : ['PGSSLMODE', text(env, 'PGSSLMODE')];
  if (value === undefined) return { connectionString, sslMode: 'disable' };
  if (!(SSL_MODES as readonly string[]).includes(value)) {
    throw new ConfigError(
      variable,
      `must be one of ${SSL_MODES.join(', ')} (libpq's allow and prefer are not supported: say require or disable), got ${JSON.stringify(value)}`,
    );
  }
  return { connectionString, sslMode: value as SslMode };
}

function flagsConfig(env: Env): FlagsConfig {
  const unleashUrl = text(env, 'UNLEASH_URL');
  const mode = text(env, 'DUAL_WRITE_MODE');
  const percent = text(env, 'READ_FROM_POSTGRES_PERCENT');
  const stages = [...STAGES, 'true', 'false'] as const;
  return {
    ...optional(
      'unleash',
      unleashUrl === undefined
        ? undefined
        : { url: unleashUrl, token: text(env, 'UNLEASH_TOKEN'), bootstrapFile: text(env, 'UNLEASH_BOOTSTRAP_FILE') },
    ),
    flagsFile: text(env, 'DUALWRITE_FLAGS_FILE') ?? '.dualwrite/flags.json',
    lastFlagsPath: text(env, 'DUALWRITE_LAST_FLAGS_PATH') ?? '.dualwrite/last-flags.json',
    ...optional(
      'env',
      mode === undefined && percent === undefined
        ? undefined
        : {
            stage: parseStage(oneOf(env, 'DUAL_WRITE_MODE', stages, 'false'), 'DUAL_WRITE_MODE'),
            readPercent: integer(env, 'READ_FROM_POSTGRES_PERCENT', 0, 0, 100),
            rolloutGroup: DEFAULT_ROLLOUT_GROUP,
          },
    ),
  };
}

/** `{ [key]: value }` when value is defined, else nothing (options objects leave unset keys out). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function text(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function oneOf<const T extends string>(env: Env, name: string, accepted: readonly T[], fallback: T): T {
  const value = text(env, name);
  if (value === undefined) return fallback;
  if (!(accepted as readonly string[]).includes(value))
    throw new ConfigError(name, `must be one of ${accepted.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(
      name,
      `must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** A number from 0 to 1; undefined when unset, so the caller's default may depend on more than the variable. */
function fraction(env: Env, name: string): number | undefined {
  const raw = text(env, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1)
    throw new ConfigError(name, `must be a number from 0 to 1, got ${JSON.stringify(raw)}`);
  return value;
}

/** An http(s) URL without credentials in it (the admin token travels in a header, from its own variable). */
function httpUrl(env: Env, name: string): string | undefined {
  const raw = text(env, name);
  if (raw === undefined) return undefined;
  const problem = httpUrlProblem(raw);
  if (problem) throw new ConfigError(name, problem);
  return raw;
}

/** Why `raw` is not an admin API URL (http or https, no user or password in it), or undefined when it is one. Shared with the CLI's --url. */
export function httpUrlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `must be an http:// or https:// URL, got ${JSON.stringify(raw)}`;
  }
  if (url.username || url.password)
    return 'must not contain a user or password (the admin token comes from DUALWRITE_ADMIN_TOKEN)';
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `must be an http:// or https:// URL, got ${JSON.stringify(raw)}`;
  return undefined;
}

function identifier(env: Env, name: string): string | undefined {
  const raw = text(env, name);
  if (raw === undefined) return undefined;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw))
    throw new ConfigError(name, `must be a lowercase SQL identifier, got ${JSON.stringify(raw)}`);
  return raw;
}

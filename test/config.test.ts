import { describe, expect, it } from 'vitest';
import { adminApiConfig, ConfigError, loadConfig } from '../src/runtime/config.js';

/**
 * One module reads the environment: every variable is validated at start, a bad value
 * fails naming the variable, the accepted values and the value given, and an empty
 * variable means unset.
 */
describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    expect(loadConfig({})).toEqual({
      database: { kind: 'pglite' },
      flags: { flagsFile: '.dualwrite/flags.json', lastFlagsPath: '.dualwrite/last-flags.json' },
      mirrorMode: 'sync',
      outboxPath: '.dualwrite/outbox.jsonl',
      // Unset: ShadowReads samples each stage at its own default.
      shadowSampleRate: undefined,
      verifyIntervalMs: 300000,
      repair: false,
      leaseTtlMs: 15000,
      autoRetreat: false,
      adminUrl: 'http://127.0.0.1:8080',
      http: { port: 8080, host: '127.0.0.1' },
    });
  });

  it('treats every empty variable as unset', () => {
    const names = [
      'DATABASE_URL',
      'PGLITE_DATA_DIR',
      'DUAL_WRITE_MODE',
      'READ_FROM_POSTGRES_PERCENT',
      'DUALWRITE_FLAGS_FILE',
      'UNLEASH_URL',
      'UNLEASH_TOKEN',
      'UNLEASH_BOOTSTRAP_FILE',
      'DUALWRITE_MIRROR_MODE',
      'DUALWRITE_OUTBOX_PATH',
      'DUALWRITE_LAST_FLAGS_PATH',
      'DUALWRITE_INTENT_LOG_PATH',
      'REDIS_URL',
      'DUALWRITE_SHADOW_SAMPLE_RATE',
      'DUALWRITE_VERIFY_INTERVAL_MS',
      'DUALWRITE_REPAIR',
      'DUALWRITE_LEASE_TTL_MS',
      'DUALWRITE_AUTO_RETREAT',
      'DUALWRITE_ADMIN_TOKEN',
      'DUALWRITE_STATUS_TOKEN',
      'DUALWRITE_URL',
      'PORT',
      'HOST',
      'PGSSLMODE',
      'POSTGRES_SSL_MODE',
    ];
    expect(loadConfig(Object.fromEntries(names.map((name) => [name, ''])))).toEqual(loadConfig({}));
  });

  it('keeps an explicit shadow sample rate of 0 (shadow reads off), apart from an unset one (the stage default)', () => {
    expect(loadConfig({ DUALWRITE_SHADOW_SAMPLE_RATE: '0' }).shadowSampleRate).toBe(0);
    expect(loadConfig({}).shadowSampleRate).toBeUndefined();
  });

  it('reads every variable', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://app:pw@db.internal/app?sslmode=require',
      POSTGRES_SCHEMA: 'api',
      DUAL_WRITE_MODE: 'true',
      READ_FROM_POSTGRES_PERCENT: '10',
      DUALWRITE_FLAGS_FILE: '/etc/dw/flags.json',
      UNLEASH_URL: 'http://unleash:4242/api/',
      UNLEASH_TOKEN: 'default:development.x',
      UNLEASH_BOOTSTRAP_FILE: '/etc/dw/bootstrap.json',
      DUALWRITE_MIRROR_MODE: 'async',
      DUALWRITE_OUTBOX_PATH: '/var/dw/outbox.jsonl',
      DUALWRITE_LAST_FLAGS_PATH: '/var/dw/last.json',
      DUALWRITE_INTENT_LOG_PATH: '/var/dw/intents.jsonl',
      REDIS_URL: 'redis://cache:6379',
      DUALWRITE_SHADOW_SAMPLE_RATE: '0.25',
      DUALWRITE_VERIFY_INTERVAL_MS: '0',
      DUALWRITE_REPAIR: 'true',
      DUALWRITE_LEASE_TTL_MS: '2000',
      DUALWRITE_ADMIN_TOKEN: 'admin-secret',
      DUALWRITE_STATUS_TOKEN: 'status-secret',
      DUALWRITE_URL: 'https://api.internal:8443/',
      PORT: '9000',
      HOST: '0.0.0.0',
    });
    expect(config).toMatchObject({
      database: {
        kind: 'postgres',
        pool: { connectionString: 'postgres://app:pw@db.internal/app', sslMode: 'require', schema: 'api' },
      },
      flags: {
        unleash: {
          url: 'http://unleash:4242/api/',
          token: 'default:development.x',
          bootstrapFile: '/etc/dw/bootstrap.json',
        },
        flagsFile: '/etc/dw/flags.json',
        lastFlagsPath: '/var/dw/last.json',
        env: { stage: 'dual-write', readPercent: 10 },
      },
      mirrorMode: 'async',
      outboxPath: '/var/dw/outbox.jsonl',
      intentLogPath: '/var/dw/intents.jsonl',
      redisUrl: 'redis://cache:6379',
      shadowSampleRate: 0.25,
      verifyIntervalMs: 0,
      repair: true,
      leaseTtlMs: 2000,
      adminToken: 'admin-secret',
      statusToken: 'status-secret',
      adminUrl: 'https://api.internal:8443/',
      http: { port: 9000, host: '0.0.0.0' },
    });
  });

  it.each([
    ['DUALWRITE_VERIFY_INTERVAL_MS', 'abc', 'an integer >= 0'],
    ['DUALWRITE_VERIFY_INTERVAL_MS', '1e3', 'an integer >= 0'],
    ['DUALWRITE_REPAIR', 'yes', 'one of true, false'],
    ['DUALWRITE_REPAIR', 'TRUE', 'one of true, false'],
    ['DUALWRITE_AUTO_RETREAT', 'on', 'one of true, false'],
    ['DUALWRITE_MIRROR_MODE', 'eventual', 'one of sync, async'],
    [
      'DUAL_WRITE_MODE',
      'shadow',
      'one of memory-only, dual-write, read-shift, postgres-primary, postgres-only, true, false',
    ],
    ['READ_FROM_POSTGRES_PERCENT', '150', 'an integer from 0 to 100'],
    ['DUALWRITE_SHADOW_SAMPLE_RATE', '2', 'a number from 0 to 1'],
    ['DUALWRITE_SHADOW_SAMPLE_RATE', 'half', 'a number from 0 to 1'],
    ['PORT', '70000', 'an integer from 0 to 65535'],
    ['REDIS_URL', 'cache:6379', 'redis://'],
    ['POSTGRES_POOL_SIZE', '0', 'an integer >= 1'],
    ['DUALWRITE_URL', '127.0.0.1:8080', 'an http:// or https:// URL'],
    ['DUALWRITE_URL', 'ftp://api.internal/', 'an http:// or https:// URL'],
  ])('fails at start on %s=%s, naming it and saying what is accepted (%s)', (variable, value, accepted) => {
    const env = { DATABASE_URL: 'postgres://app@db/app', [variable]: value };
    let thrown: unknown;
    try {
      loadConfig(env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe(variable);
    expect((thrown as Error).message).toContain(variable);
    expect((thrown as Error).message).toContain(accepted);
  });

  it('never shows a password in an error', () => {
    expect(() => loadConfig({ REDIS_URL: 'http://:hunter2@cache:6379' })).toThrow(/\*\*\*|<unparseable/);
    expect(() => loadConfig({ REDIS_URL: 'http://:hunter2@cache:6379' })).not.toThrow(/hunter2/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://app:hunter2@db/app?sslmode=prefer' })).not.toThrow(/hunter2/);
    expect(() => loadConfig({ DUALWRITE_URL: 'http://admin:hunter2@api.internal/' })).toThrow(
      'DUALWRITE_URL must not contain a user or password',
    );
    expect(() => loadConfig({ DUALWRITE_URL: 'http://admin:hunter2@api.internal/' })).not.toThrow(/hunter2/);
  });

  it('refuses a status token that is the admin token, without showing it', () => {
    const same = { DUALWRITE_ADMIN_TOKEN: 'hunter2-token', DUALWRITE_STATUS_TOKEN: 'hunter2-token' };
    expect(() => loadConfig(same)).toThrow('DUALWRITE_STATUS_TOKEN must differ from DUALWRITE_ADMIN_TOKEN');
    expect(() => loadConfig(same)).not.toThrow(/hunter2/);
    expect(loadConfig({ DUALWRITE_STATUS_TOKEN: 'read-only' })).toMatchObject({ statusToken: 'read-only' });
  });

  it('adminApiConfig reads only what the CLI needs to reach a running process', () => {
    expect(
      adminApiConfig({
        DATABASE_URL: 'not a url',
        DUALWRITE_ADMIN_TOKEN: 't0k',
        DUALWRITE_URL: 'http://10.0.0.5:8080',
      }),
    ).toEqual({ adminUrl: 'http://10.0.0.5:8080', adminToken: 't0k' });
    expect(adminApiConfig({})).toEqual({ adminUrl: 'http://127.0.0.1:8080' });
  });
});

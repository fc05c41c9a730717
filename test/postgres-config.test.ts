import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import { type PostgresPoolOptions } from '../src/postgres/pool-config.js';
import { poolOptionsFromEnv } from '../src/runtime/config.js';
import { redactUrl } from '../src/postgres/redact.js';
import { availableBackends } from './support/backends.js';

const URL_ONLY = { DATABASE_URL: 'postgres://app@db.internal:5432/prod' };

describe('poolOptionsFromEnv', () => {
  it('uses the asyncpg-style defaults when only DATABASE_URL is set', () => {
    expect(poolOptionsFromEnv(URL_ONLY)).toEqual({
      connectionString: URL_ONLY.DATABASE_URL,
      poolSize: 20,
      maxOverflow: 10,
      minSize: 10,
      maxQueriesPerConnection: 50000,
      idleLifetimeSeconds: 300,
      statementTimeoutMs: 30000,
      connectTimeoutMs: 10000,
      sslMode: 'disable',
    });
  });

  it('treats an empty numeric variable as unset', () => {
    const empty = Object.fromEntries(
      [
        'POSTGRES_POOL_SIZE',
        'POSTGRES_MAX_OVERFLOW',
        'POSTGRES_POOL_MIN_SIZE',
        'POSTGRES_MAX_QUERIES',
        'POSTGRES_IDLE_LIFETIME_SECONDS',
        'POSTGRES_STATEMENT_TIMEOUT_MS',
        'POSTGRES_CONNECT_TIMEOUT_MS',
      ].map((name) => [name, '']),
    );
    expect(poolOptionsFromEnv({ ...URL_ONLY, ...empty })).toEqual(poolOptionsFromEnv(URL_ONLY));
  });

  it('reads every override from its variable', () => {
    const options = poolOptionsFromEnv({
      DATABASE_URL: 'postgresql://app@db/prod',
      POSTGRES_POOL_SIZE: '5',
      POSTGRES_MAX_OVERFLOW: '0',
      POSTGRES_POOL_MIN_SIZE: '2',
      POSTGRES_MAX_QUERIES: '100',
      POSTGRES_IDLE_LIFETIME_SECONDS: '60',
      POSTGRES_STATEMENT_TIMEOUT_MS: '0',
      POSTGRES_CONNECT_TIMEOUT_MS: '2500',
      PGSSLMODE: 'verify-full',
    });
    expect(options).toEqual<PostgresPoolOptions>({
      connectionString: 'postgresql://app@db/prod',
      poolSize: 5,
      maxOverflow: 0,
      minSize: 2,
      maxQueriesPerConnection: 100,
      idleLifetimeSeconds: 60,
      statementTimeoutMs: 0,
      connectTimeoutMs: 2500,
      sslMode: 'verify-full',
    });
  });

  it.each(['disable', 'require', 'verify-ca', 'verify-full'])(
    'accepts PGSSLMODE=%s and ?sslmode=%s, the URL winning, as in libpq',
    (mode) => {
      expect(poolOptionsFromEnv({ ...URL_ONLY, PGSSLMODE: mode }).sslMode).toBe(mode);
      const fromUrl = poolOptionsFromEnv({
        DATABASE_URL: `${URL_ONLY.DATABASE_URL}?sslmode=${mode}&application_name=api`,
        PGSSLMODE: 'disable',
      });
      expect(fromUrl.sslMode).toBe(mode);
      // node-postgres would apply its own reading of sslmode over ours: it is taken out of the URL it gets.
      expect(fromUrl.connectionString).toBe(`${URL_ONLY.DATABASE_URL}?application_name=api`);
    },
  );

  it('refuses POSTGRES_SSL_MODE, saying how SSL is set instead', () => {
    expect(() => poolOptionsFromEnv({ ...URL_ONLY, POSTGRES_SSL_MODE: 'require' })).toThrow(
      /POSTGRES_SSL_MODE .*sslmode=.*PGSSLMODE/,
    );
  });

  it('caps minSize at poolSize', () => {
    expect(poolOptionsFromEnv({ ...URL_ONLY, POSTGRES_POOL_SIZE: '4' }).minSize).toBe(4);
  });

  it.each([
    ['POSTGRES_POOL_SIZE', '0'],
    ['POSTGRES_POOL_SIZE', 'ten'],
    ['POSTGRES_POOL_SIZE', '2.5'],
    ['POSTGRES_POOL_SIZE', '-3'],
    ['POSTGRES_POOL_SIZE', 'Infinity'],
    ['POSTGRES_MAX_OVERFLOW', '-1'],
    ['POSTGRES_POOL_MIN_SIZE', '-1'],
    ['POSTGRES_MAX_QUERIES', '0'],
    ['POSTGRES_IDLE_LIFETIME_SECONDS', '0'],
    ['POSTGRES_IDLE_LIFETIME_SECONDS', '1.5'],
    ['POSTGRES_STATEMENT_TIMEOUT_MS', '-5'],
    ['POSTGRES_STATEMENT_TIMEOUT_MS', '30s'],
    ['POSTGRES_CONNECT_TIMEOUT_MS', '0'],
    ['PGSSLMODE', 'prefer'],
    ['PGSSLMODE', 'DISABLE'],
  ])('rejects %s=%s with a TypeError naming the variable and quoting the value', (name, value) => {
    expect(() => poolOptionsFromEnv({ ...URL_ONLY, [name]: value })).toThrow(TypeError);
    expect(() => poolOptionsFromEnv({ ...URL_ONLY, [name]: value })).toThrow(name);
    expect(() => poolOptionsFromEnv({ ...URL_ONLY, [name]: value })).toThrow(JSON.stringify(value));
  });

  it('rejects a missing DATABASE_URL with a TypeError naming it', () => {
    expect(() => poolOptionsFromEnv({})).toThrow(TypeError);
    expect(() => poolOptionsFromEnv({})).toThrow('DATABASE_URL');
  });

  it.each([
    [
      'an unencoded "#"',
      'postgres://app:S3cr#et@db.internal:5432/app',
      /contains "#".*%23 \(postgres:\/\/app:\*\*\*@db\.internal:5432\/app\)/,
    ],
    [
      'an unencoded "@"',
      'postgres://app:S3cr@et@db.internal:5432/app',
      /more than one "@".*%40 \(postgres:\/\/app:\*\*\*@db\.internal:5432\/app\)/,
    ],
    ['both', 'postgres://app:S3cr@t#x@db.internal/app', /contains "#"/],
    ['an unencoded "/"', 'postgresql://app:S3/cret@db.internal/app', /"\/" or "\?"/],
  ])('rejects a DATABASE_URL with %s in the password, showing it with the password hidden', (_what, url, message) => {
    const error = (() => {
      try {
        poolOptionsFromEnv({ DATABASE_URL: url });
      } catch (caught) {
        return caught as Error;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(TypeError);
    expect(error!.message).toMatch(/^DATABASE_URL /);
    expect(error!.message).toMatch(message);
    for (const fragment of ['S3cr', 'et@', 't#x', '/cret']) expect(error!.message).not.toContain(fragment);
  });

  it('accepts a percent-encoded password and an "@" in the query', () => {
    expect(poolOptionsFromEnv({ DATABASE_URL: 'postgres://app:S3cr%40et%23x@db.internal/app' }).connectionString).toBe(
      'postgres://app:S3cr%40et%23x@db.internal/app',
    );
    expect(poolOptionsFromEnv({ DATABASE_URL: 'postgres://db.internal/app?user=a@b' }).connectionString).toBe(
      'postgres://db.internal/app?user=a@b',
    );
  });
});

const PASSWORD = 'S3cr3t-pw%21';
const SECRETS = [PASSWORD, 'S3cr3t-pw!'];

/** Fails if any form of the password appears in the error's message, stack or properties. */
function expectNoSecret(error: unknown): void {
  expect(error).toBeInstanceOf(Error);
  const { message, stack } = error as Error;
  for (const [where, text] of Object.entries({
    message,
    stack: stack ?? '',
    inspected: inspect(error, { depth: 10 }),
  })) {
    for (const secret of SECRETS) expect(text, `${where} contains the password`).not.toContain(secret);
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

describe('the DATABASE_URL password stays out of logs and errors', () => {
  it('redactUrl replaces the password with ***', () => {
    expect(redactUrl(`postgres://app:${PASSWORD}@db.internal:5432/prod?sslmode=require`)).toBe(
      'postgres://app:***@db.internal:5432/prod?sslmode=require',
    );
  });

  it.each([
    `postgres://app:${PASSWORD}@db.internal:5432/prod`,
    `postgresql://app:${PASSWORD}@db/prod?application_name=dualwrite`,
    'postgres://app:S3cr3t-pw!@db/prod',
    `postgres://app:${PASSWORD}@[not-a-host/prod`,
    `app:${PASSWORD}@db.internal:5432/prod`,
    `postgres://db.internal/prod?user=app&password=${PASSWORD}`,
  ])('redactUrl hides the password of %s', (url) => {
    const redacted = redactUrl(url);
    for (const secret of SECRETS) expect(redacted).not.toContain(secret);
  });

  it.each([
    `mysql://app:${PASSWORD}@db/prod`,
    `postgres//app:${PASSWORD}@db/prod`,
    `app:${PASSWORD}@db.internal:5432/prod`,
    ` postgres://app:${PASSWORD}@db/prod`,
  ])('rejects the invalid DATABASE_URL %j without repeating its password', (url) => {
    let thrown: unknown;
    try {
      poolOptionsFromEnv({ DATABASE_URL: url });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toContain('DATABASE_URL');
    expectNoSecret(thrown);
  });

  const unreachable = [
    ['a closed port', `postgres://app:${PASSWORD}@127.0.0.1:1/prod`],
    ['a port out of range', `postgres://app:${PASSWORD}@127.0.0.1:99999/prod`],
  ];
  const operations = [
    ['query', (db: PgPoolExecutor) => db.query('SELECT 1')],
    ['transaction', (db: PgPoolExecutor) => db.transaction((tx) => tx.query('SELECT 1'))],
  ] as const;

  describe.each(unreachable)('PgPoolExecutor on %s', (_, url) => {
    it.each(operations)('%s rejects with an error free of the password', async (_operation, run) => {
      const db = new PgPoolExecutor({
        ...poolOptionsFromEnv({ DATABASE_URL: url }),
        minSize: 0,
        connectTimeoutMs: 5000,
      });
      try {
        expectNoSecret(await rejection(run(db)));
      } finally {
        await db.close();
      }
    });
  });
});

const postgres = availableBackends(['postgres']);

describe.skipIf(postgres.length === 0)('PgPoolExecutor on the real server', () => {
  /** A small pool on DATABASE_URL with extra POSTGRES_* variables. */
  function pool(env: Record<string, string>, overrides: Partial<PostgresPoolOptions> = {}): PgPoolExecutor {
    return new PgPoolExecutor({
      ...poolOptionsFromEnv({ ...process.env, ...env }),
      poolSize: 1,
      maxOverflow: 0,
      minSize: 0,
      ...overrides,
    });
  }

  it('rejects an unknown user with an error free of the password', async () => {
    const server = new URL(process.env.DATABASE_URL!);
    const db = pool({ DATABASE_URL: `postgres://dw_no_such_user:${PASSWORD}@${server.host}${server.pathname}` });
    try {
      const error = await rejection(db.query('SELECT 1'));
      expect(error).toMatchObject({ code: '28000' });
      expectNoSecret(error);
    } finally {
      await db.close();
    }
  });

  it('applies POSTGRES_STATEMENT_TIMEOUT_MS to every connection', async () => {
    const db = pool({ POSTGRES_STATEMENT_TIMEOUT_MS: '100' });
    try {
      expect(await db.query('SHOW statement_timeout')).toEqual([{ statement_timeout: '100ms' }]);
      await expect(db.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await db.close();
    }
  });

  it('sets the default statement timeout of 30 s', async () => {
    const env = { ...process.env };
    delete env.POSTGRES_STATEMENT_TIMEOUT_MS;
    const db = new PgPoolExecutor({ ...poolOptionsFromEnv(env), poolSize: 1, maxOverflow: 0, minSize: 0 });
    try {
      expect(await db.query('SHOW statement_timeout')).toEqual([{ statement_timeout: '30s' }]);
    } finally {
      await db.close();
    }
  });

  it('replaces a connection after POSTGRES_MAX_QUERIES checkouts', async () => {
    const db = pool({ POSTGRES_MAX_QUERIES: '2' });
    try {
      const pids: number[] = [];
      for (let i = 0; i < 3; i++)
        pids.push((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid);
      expect(pids[1]).toBe(pids[0]);
      expect(pids[2]).not.toBe(pids[0]);
    } finally {
      await db.close();
    }
  });
});

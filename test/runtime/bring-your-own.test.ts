import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { openPostgresSchema } from '../support/backends.js';
import { canRun, unsetVariable } from '../support/service-available.js';

/**
 * An application brings its own: its node-postgres pool (migrated, used as it is, never
 * ended, its type parsers left alone), a connection string, and a pino logger.
 */
const available = canRun('the bring-your-own-pool test', unsetVariable('DATABASE_URL'));

describe.runIf(available)('openDualWrite with what the application brings', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup() {
    const schema = await openPostgresSchema('dw_byo');
    cleanups.push(() => schema.drop());
    const dir = await mkdtemp(join(tmpdir(), 'dw-byo-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const env = {
      DUAL_WRITE_MODE: 'dual-write',
      DUALWRITE_OUTBOX_PATH: join(dir, 'outbox.jsonl'),
      DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
      DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last.json'),
      DUALWRITE_VERIFY_INTERVAL_MS: '0',
    };
    return { schema, env };
  }

  it("migrates and uses the application's pg.Pool, leaves its type parsers alone and does not end it", async () => {
    const { schema, env } = await setup();
    const pool = new pg.Pool({
      connectionString: process.env.DATABASE_URL,
      max: 4,
      options: `-c search_path=${schema.schema},public`,
    });
    cleanups.push(() => pool.end());
    const rt = await openDualWrite({ db: pool, env, lease: false });
    const react = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'react' });
    expect(await rt.postgres.graph.getProject(react)).toEqual(react);
    expect((await rt.verifier.runOnce())!.consistent).toBe(true);
    expect(rt.db.poolStats().max).toBe(4);
    await rt.close();

    // Still the application's: open, and still parsing timestamps its own way (Date objects).
    const [row] = (await pool.query<{ created_at: unknown }>('SELECT created_at FROM projects')).rows;
    expect(row!.created_at).toBeInstanceOf(Date);
  });

  it('opens a connection string as DATABASE_URL would be, with the POSTGRES_* settings, and closes it', async () => {
    const { schema, env } = await setup();
    const rt = await openDualWrite({
      db: process.env.DATABASE_URL!,
      env: { ...env, POSTGRES_SCHEMA: schema.schema, POSTGRES_POOL_SIZE: '3', POSTGRES_MAX_OVERFLOW: '0' },
      lease: false,
    });
    await rt.graph.upsertProject({ ecosystem: 'npm', name: 'vue' });
    expect(rt.db.poolStats().max).toBe(3);
    expect((await schema.db.query<{ name: string }>('SELECT name FROM projects')).map((p) => p.name)).toEqual(['vue']);
    await rt.close();
  });

  it('logs through a pino logger', async () => {
    const { schema, env } = await setup();
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) },
    );
    await migrate(schema.db, await loadMigrations());
    const rt = await openDualWrite({ db: schema.db, env, lease: false, logger });
    await rt.close();
    expect(lines.some((line) => line.level === 30 && line.msg.includes('stage (start) -> dual-write'))).toBe(true);
  });
});

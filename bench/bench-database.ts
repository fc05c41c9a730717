import { loadMigrations, migrate } from '../src/postgres/migrations.js';
import { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../src/runtime/config.js';

/** Runs `work` on a migrated schema of its own in the DATABASE_URL database, dropped afterwards. */
export async function withBenchSchema<T>(name: string, work: (db: PgPoolExecutor) => Promise<T>): Promise<T> {
  const schema = `${name}_${process.pid}`;
  const admin = new PgPoolExecutor({ ...poolOptionsFromEnv(), minSize: 0 });
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.query(`CREATE SCHEMA ${schema}`);
  const db = new PgPoolExecutor({ ...poolOptionsFromEnv(), schema, minSize: 0 });
  try {
    await migrate(db, await loadMigrations());
    return await work(db);
  } finally {
    await db.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.close();
  }
}

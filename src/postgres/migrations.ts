import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlExecutor } from './sql-executor.js';
import { DualWriteError } from '../domain/errors.js';

/** The schema/ folder shipped with dualwrite. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schema/', import.meta.url));

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** sha256 of the file's bytes. */
  readonly checksum: string;
}

export interface MigrationReport {
  readonly applied: readonly Migration[];
  readonly alreadyApplied: readonly Migration[];
}

/** An applied migration file was edited afterwards, or two files share a version. */
export class MigrationError extends DualWriteError {}

const FILE_PATTERN = /^(\d+)_([\w-]+)\.sql$/;
const LOCK_KEY = 'dualwrite.migrations';

/** Reads NNN_name.sql files from `dir`, ordered by version. */
export async function loadMigrations(dir = SCHEMA_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of await readdir(dir)) {
    const match = FILE_PATTERN.exec(file);
    if (!match) continue;
    const sql = await readFile(join(dir, file), 'utf8');
    migrations.push({
      version: Number(match[1]),
      name: file,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new MigrationError(
        `${migrations[i - 1]!.name} and ${migrations[i]!.name} share version ${migrations[i]!.version}`,
      );
    }
  }
  return migrations;
}

/**
 * Applies pending migrations, each once, in one transaction under an advisory lock (so
 * concurrent runners queue), and records each with its checksum. Refuses to run if an
 * applied file's checksum changed. Re-running with nothing pending changes nothing.
 */
export async function migrate(db: SqlExecutor, migrations: readonly Migration[]): Promise<MigrationReport> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LOCK_KEY]);
    // Created only when missing: a role without CREATE (schema/roles/least-privilege.sql) can still find nothing to do.
    const [{ exists } = { exists: false }] = await tx.query<{ exists: boolean }>(
      `SELECT to_regclass('dualwrite_schema_migrations') IS NOT NULL AS exists`,
    );
    if (!exists) {
      await tx.query(`CREATE TABLE dualwrite_schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())`);
    }
    const recorded = new Map(
      (
        await tx.query<{ version: number; name: string; checksum: string }>(
          'SELECT version, name, checksum FROM dualwrite_schema_migrations',
        )
      ).map((row) => [row.version, row]),
    );
    const applied: Migration[] = [];
    const alreadyApplied: Migration[] = [];
    for (const migration of migrations) {
      const previous = recorded.get(migration.version);
      if (previous) {
        if (previous.checksum !== migration.checksum) {
          throw new MigrationError(
            `${migration.name} changed after it was applied (checksum ${migration.checksum.slice(0, 12)}, applied ${previous.checksum.slice(0, 12)}); add a new migration instead`,
          );
        }
        alreadyApplied.push(migration);
        continue;
      }
      await tx.execScript(migration.sql);
      await tx.query('INSERT INTO dualwrite_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      applied.push(migration);
    }
    return { applied, alreadyApplied };
  });
}

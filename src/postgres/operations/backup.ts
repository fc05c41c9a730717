import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readBackupEntries, sha256Of, writeBackupEntries, type BackupEntry } from './backup-metadata.js';
import { connectionTarget } from './connection-target.js';
import { countRows, dualwriteTables } from './dualwrite-tables.js';
import { loadMigrations } from '../migrations.js';
import { findPgTool, runPgTool } from './pg-tools.js';
import type { PostgresPoolOptions } from '../pool-config.js';
import { readSchemaVersion } from './schema-version.js';
import { openServerConnection } from './server-connection.js';
import { readServerVersion } from './server-version.js';

export interface BackupRequest {
  /** DATABASE_URL and its settings: whose database is dumped. */
  readonly database: PostgresPoolOptions;
  /** Folder of the dumps and their metadata.json; created if missing. */
  readonly dir: string;
  /** File name of the dump; default <database>-<timestamp>.dump. */
  readonly fileName?: string;
  readonly now?: Date;
}

/**
 * Dumps the database with pg_dump --format=custom and appends its entry to metadata.json.
 * The row counts are read in the very snapshot pg_dump dumps (pg_export_snapshot), so a
 * restore can check them exactly even while the application writes.
 */
export async function createBackup(request: BackupRequest): Promise<BackupEntry> {
  const { database, dir } = request;
  const now = request.now ?? new Date();
  const target = connectionTarget(database.connectionString);
  const db = await openServerConnection(target, database.sslMode, {
    schema: database.schema,
    connectTimeoutMs: database.connectTimeoutMs,
  });
  try {
    const server = await readServerVersion(db);
    const pgDump = await findPgTool('pg_dump', server.major);
    const migrations = await loadMigrations();
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const [{ snapshot }] = (await db.query<{ snapshot: string }>('SELECT pg_export_snapshot() AS snapshot')) as [
      { snapshot: string },
    ];
    const schemaVersion = (await readSchemaVersion(db, migrations)).current;
    const rowCounts = await countRows(db, dualwriteTables(migrations));
    await mkdir(dir, { recursive: true });
    const file = request.fileName ?? `${target.database}-${fileTimestamp(now)}.dump`;
    const path = join(dir, file);
    try {
      await runPgTool(
        pgDump,
        target,
        ['--format=custom', `--snapshot=${snapshot}`, `--file=${path}`, `--dbname=${target.database}`],
        database.sslMode,
      );
    } catch (error) {
      // A half-written dump must not be taken for a backup (it has no metadata entry, and retention would never remove it).
      await rm(path, { force: true });
      throw error;
    }
    await db.query('COMMIT');
    const entry: BackupEntry = {
      file,
      time: now.toISOString(),
      schemaVersion,
      sizeBytes: (await stat(path)).size,
      sha256: await sha256Of(path),
      serverVersion: server.version,
      rowCounts,
    };
    await writeBackupEntries(dir, [
      ...(await readBackupEntries(dir)).filter((existing) => existing.file !== file),
      entry,
    ]);
    return entry;
  } finally {
    await db.close();
  }
}

/** 2026-12-01T21:30:00.123Z -> 20261201T213000123Z: sortable, and no ":" (not allowed in Windows file names). */
function fileTimestamp(time: Date): string {
  return time.toISOString().replace(/[-:.]/g, '');
}

import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { entryFor, METADATA_FILE, sha256Of, type BackupEntry } from './backup-metadata.js';
import { connectionTarget, quoteIdentifier, type ConnectionTarget } from './connection-target.js';
import { replacedName, swapDatabase } from './database-swap.js';
import { countRows, dualwriteTables, holdsData } from './dualwrite-tables.js';
import { loadMigrations } from '../migrations.js';
import { findPgTool, runPgTool } from './pg-tools.js';
import type { PostgresPoolOptions } from '../pool-config.js';
import { RestoreRefusedError } from './restore-refused.js';
import { openServerConnection, type ServerConnection } from './server-connection.js';
import { readServerVersion } from './server-version.js';

/** The database CREATE/ALTER DATABASE are run from: a database cannot be renamed by a session connected to it. */
const MAINTENANCE_DATABASE = 'postgres';

export interface RestoreRequest {
  /** DATABASE_URL and its settings: the database replaced. */
  readonly database: PostgresPoolOptions;
  /** A dump made by createBackup, with metadata.json beside it. */
  readonly file: string;
  /** Replace a target that holds data. */
  readonly force?: boolean;
  /** Drop the database replaced instead of keeping it aside (a test database being reset). */
  readonly dropReplaced?: boolean;
  readonly now?: Date;
}

export interface RestoreReport {
  readonly database: string;
  readonly file: string;
  readonly schemaVersion: number;
  readonly rowCounts: Record<string, number>;
  /** Where the database it replaced was kept; undefined when there was none, or it was dropped. */
  readonly replacedKeptAs?: string;
}

/**
 * Restores a backup in place of the database of DATABASE_URL, never touching it until the
 * restored copy has passed its checks: the file's sha256 against metadata.json, then a
 * restore into a scratch database whose dualwrite tables must hold the recorded row counts,
 * then a swap of the two (swapDatabase). If anything fails the scratch database is dropped
 * and the target is as it was.
 */
export async function restoreBackup(request: RestoreRequest): Promise<RestoreReport> {
  const entry = await verifiedEntry(request.file);
  const target = connectionTarget(request.database.connectionString);
  if (target.database === MAINTENANCE_DATABASE)
    throw new RestoreRefusedError(
      `will not replace the ${MAINTENANCE_DATABASE} database: point DATABASE_URL at an application database`,
    );
  const connect = (database: string) =>
    openServerConnection(target, request.database.sslMode, {
      database,
      schema: request.database.schema,
      connectTimeoutMs: request.database.connectTimeoutMs,
    });
  const admin = await connect(MAINTENANCE_DATABASE);
  try {
    const exists = await databaseExists(admin, target.database);
    if (exists && !request.force) await refuseWhenHoldingData(connect, target.database);
    const pgRestore = await findPgTool('pg_restore', (await readServerVersion(admin)).major);
    const scratch = `dw_restore_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${quoteIdentifier(scratch)} TEMPLATE template0`);
    try {
      await restoreInto(pgRestore, { ...target, database: scratch }, request);
      await checkRestored(connect, scratch, entry);
      const aside = exists ? replacedName(target.database, request.now ?? new Date()) : undefined;
      await swapDatabase(admin, { target: target.database, replacement: scratch, ...(aside ? { aside } : {}) });
      if (aside && request.dropReplaced) await admin.query(`DROP DATABASE ${quoteIdentifier(aside)} WITH (FORCE)`);
      return {
        database: target.database,
        file: request.file,
        schemaVersion: entry.schemaVersion,
        rowCounts: entry.rowCounts,
        ...(aside && !request.dropReplaced ? { replacedKeptAs: aside } : {}),
      };
    } catch (error) {
      // After a swap the scratch name no longer exists, so this drops only a scratch left behind.
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(scratch)} WITH (FORCE)`).catch(() => {});
      throw error;
    }
  } finally {
    await admin.close();
  }
}

/** The file's metadata entry, once its bytes are shown to be the ones recorded: a file changed since the backup is refused. */
async function verifiedEntry(file: string): Promise<BackupEntry> {
  const entry = await entryFor(file);
  if (!entry)
    throw new RestoreRefusedError(
      `${basename(file)} has no entry in the ${METADATA_FILE} beside it: cannot check it, so it is not restored`,
    );
  const actual = await sha256Of(file);
  if (actual !== entry.sha256)
    throw new RestoreRefusedError(
      `${basename(file)} has sha256 ${actual}, but ${METADATA_FILE} records ${entry.sha256}: the file changed since the backup; nothing was restored`,
    );
  return entry;
}

async function databaseExists(admin: ServerConnection, name: string): Promise<boolean> {
  return (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;
}

async function refuseWhenHoldingData(
  connect: (database: string) => Promise<ServerConnection>,
  database: string,
): Promise<void> {
  const db = await connect(database);
  try {
    const counts = await countRows(db, dualwriteTables(await loadMigrations()));
    if (holdsData(counts))
      throw new RestoreRefusedError(
        `${database} holds data (${Object.entries(counts)
          .filter(([, n]) => n > 0)
          .map(([table, n]) => `${table} ${n}`)
          .join(', ')}): add --force to replace it (it is kept aside, renamed)`,
      );
  } finally {
    await db.close();
  }
}

async function restoreInto(pgRestore: string, scratch: ConnectionTarget, request: RestoreRequest): Promise<void> {
  // --no-owner: the objects belong to the user restoring, the one the application connects
  // as, whichever role owned them where the dump was made.
  await runPgTool(
    pgRestore,
    scratch,
    ['--exit-on-error', '--no-owner', `--dbname=${scratch.database}`, request.file],
    request.database.sslMode,
  );
}

/** Every table the backup recorded is there with the rows it had. */
async function checkRestored(
  connect: (database: string) => Promise<ServerConnection>,
  scratch: string,
  entry: BackupEntry,
): Promise<void> {
  const db = await connect(scratch);
  try {
    const counts = await countRows(db, Object.keys(entry.rowCounts));
    const problems = Object.entries(entry.rowCounts)
      .filter(([table, expected]) => counts[table] !== expected)
      .map(([table, expected]) =>
        counts[table] === undefined
          ? `${table} missing`
          : `${table} has ${counts[table]} rows, the backup recorded ${expected}`,
      );
    if (problems.length > 0)
      throw new RestoreRefusedError(
        `the restored copy fails its checks (${problems.join('; ')}); the database was left as it was`,
      );
  } finally {
    await db.close();
  }
}

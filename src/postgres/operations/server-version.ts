import type { SqlQueryable } from '../sql-executor.js';

/** The server's version as it prints it ("15.20 (Debian ...)") and its major number (15). */
export async function readServerVersion(db: SqlQueryable): Promise<{ version: string; major: number }> {
  const [row] = await db.query<{ version: string; num: string }>(
    `SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num`,
  );
  return { version: row!.version, major: Math.floor(Number(row!.num) / 10000) };
}

import { quoteIdentifier } from './connection-target.js';
import { RestoreRefusedError } from './restore-refused.js';
import { DB_TOOL_APPLICATION_NAME, type ServerConnection } from './server-connection.js';

const IDENTIFIER_MAX = 63;

/** "<target>_replaced_<YYYYMMDDHHMMSS>", the target's part shortened to fit PostgreSQL's 63-byte names. */
export function replacedName(target: string, now: Date): string {
  const suffix = `_replaced_${now.toISOString().replace(/\D/g, '').slice(0, 14)}`;
  return `${target.slice(0, IDENTIFIER_MAX - suffix.length)}${suffix}`;
}

/**
 * Puts database `replacement` in the place of `target` in one transaction: `target` (when
 * it exists) is renamed to `aside`, then `replacement` to `target`; either both renames
 * happen or neither. Refuses while sessions of other applications are connected to
 * `target`; leftover sessions of the db commands themselves are ended first.
 * `admin` must be connected to another database (the maintenance one).
 */
export async function swapDatabase(
  admin: ServerConnection,
  options: { target: string; replacement: string; aside?: string },
): Promise<void> {
  const { target, replacement, aside } = options;
  await admin.query('BEGIN');
  try {
    if (aside) {
      await endOwnSessions(admin, target);
      await admin.query(`ALTER DATABASE ${quoteIdentifier(target)} RENAME TO ${quoteIdentifier(aside)}`);
    }
    await admin.query(`ALTER DATABASE ${quoteIdentifier(replacement)} RENAME TO ${quoteIdentifier(target)}`);
    await admin.query('COMMIT');
  } catch (error) {
    await admin.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** Refuses when other applications are connected to `database`; ends the sessions of our own application name and waits for them to go. */
async function endOwnSessions(admin: ServerConnection, database: string): Promise<void> {
  const sessions = await admin.query<{ pid: number; application: string }>(
    `SELECT pid, application_name AS application FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
    [database],
  );
  const others = sessions.filter((session) => session.application !== DB_TOOL_APPLICATION_NAME);
  if (others.length > 0) {
    const names = [...new Set(others.map((session) => session.application || '(no application_name)'))].join(', ');
    throw new RestoreRefusedError(
      `${others.length} other session(s) are connected to ${database} (${names}): stop them first; nothing was changed`,
    );
  }
  if (sessions.length === 0) return;
  await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid()`,
    [database, DB_TOOL_APPLICATION_NAME],
  );
  // pg_terminate_backend only signals; the rename fails until the backends have exited.
  for (let attempt = 0; attempt < 100; attempt++) {
    const [left] = await admin.query<{ count: string }>(
      `SELECT count(*) AS count FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [database],
    );
    if (Number(left!.count) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

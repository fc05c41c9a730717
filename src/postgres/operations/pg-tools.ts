import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { ConnectionTarget } from './connection-target.js';
import { DualWriteError } from '../../domain/errors.js';

const execFileAsync = promisify(execFile);

/** pg_dump or pg_restore missing, or older than the server (an older pg_dump cannot read a newer server's catalog). */
export class PgToolError extends DualWriteError {}

export type PgTool = 'pg_dump' | 'pg_restore';

/**
 * Finds `tool` on PATH, else in Debian's /usr/lib/postgresql/<server major>/bin, and checks
 * that its major version is at least the server's. Resolves to the executable's path.
 */
export async function findPgTool(tool: PgTool, serverMajor: number, path = process.env.PATH ?? ''): Promise<string> {
  const candidates = [
    ...path
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, tool)),
    join('/usr/lib/postgresql', String(serverMajor), 'bin', tool),
  ];
  for (const candidate of candidates) {
    if (!(await isExecutable(candidate))) continue;
    const major = await toolMajor(candidate);
    if (major >= serverMajor) return candidate;
    throw new PgToolError(
      `${candidate} is version ${major}, older than the server (${serverMajor}): install the PostgreSQL ${serverMajor} client tools`,
    );
  }
  throw new PgToolError(
    `${tool} not found on PATH nor in /usr/lib/postgresql/${serverMajor}/bin: install the PostgreSQL ${serverMajor} client tools`,
  );
}

/** Runs a libpq tool against `target`: the password goes in the child's PGPASSWORD, never on its command line. */
export async function runPgTool(
  executable: string,
  target: ConnectionTarget,
  args: readonly string[],
  sslMode: string,
): Promise<void> {
  const env = {
    ...process.env,
    PGSSLMODE: sslMode,
    PGAPPNAME: 'dualwrite-db',
    ...(target.password ? { PGPASSWORD: target.password } : {}),
  };
  try {
    await execFileAsync(
      executable,
      ['--host', target.host, '--port', String(target.port), '--username', target.user, '--no-password', ...args],
      { env, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${executable} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** "pg_dump (PostgreSQL) 15.20 (Debian ...)" -> 15. */
async function toolMajor(executable: string): Promise<number> {
  const { stdout } = await execFileAsync(executable, ['--version']);
  const match = /\(PostgreSQL\) (\d+)/.exec(stdout);
  if (!match) throw new PgToolError(`cannot tell the version of ${executable} from ${JSON.stringify(stdout.trim())}`);
  return Number(match[1]);
}

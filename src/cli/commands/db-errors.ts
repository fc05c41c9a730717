import { PgToolError } from '../../postgres/operations/pg-tools.js';
import { redactUrl } from '../../postgres/redact.js';
import { RestoreRefusedError } from '../../postgres/operations/restore-refused.js';
import { unreachableOr } from '../database.js';
import { CliError, EXIT } from '../exit-codes.js';

/**
 * The error of a `dualwrite db` command as the CLI reports it: the server not reached is
 * exit 3, pg_dump/pg_restore missing or too old exit 2 (the machine needs the client
 * tools), a refused restore exit 1; anything else as it is.
 */
export function dbCommandError(error: unknown, connectionString: string): unknown {
  if (error instanceof PgToolError) return new CliError(EXIT.usage, error.message);
  if (error instanceof RestoreRefusedError) return new CliError(EXIT.failed, error.message);
  return unreachableOr(error, `the database at ${redactUrl(connectionString)}`);
}

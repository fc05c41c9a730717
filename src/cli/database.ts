import { userInfo } from 'node:os';
import { UnavailableError } from '../domain/errors.js';
import type { Principal } from '../postgres/runtime-state/audit-log.js';
import { DatabaseUnreachableError, openDatabase, type OpenedDatabase } from '../postgres/open-database.js';
import { redactUrl } from '../postgres/redact.js';
import { databaseConfig } from '../runtime/config.js';
import { CliError, EXIT } from './exit-codes.js';

/** Socket errors that mean the server was not reached. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Opens (and migrates) the database of DATABASE_URL, or embedded PGlite, for the commands
 * that work on it directly. A server that cannot be reached, or refuses the login, is a
 * CliError with exit code 3 naming it (password hidden).
 */
export async function openCliDatabase(): Promise<OpenedDatabase> {
  const config = databaseConfig();
  try {
    return await openDatabase(config);
  } catch (error) {
    throw unreachableOr(
      error,
      config.kind === 'postgres' ? `the database at ${redactUrl(config.pool.connectionString)}` : 'embedded PGlite',
    );
  }
}

/** A connection failure as a CliError with exit code 3 saying what could not be reached (`where`, any password hidden); any other error as it is. */
export function unreachableOr(error: unknown, where = 'the database'): unknown {
  // Said once: the driver's own words, after where.
  const failure = error instanceof DatabaseUnreachableError ? error.cause : error;
  return isConnectionFailure(failure) || error instanceof DatabaseUnreachableError
    ? new CliError(EXIT.unreachable, `cannot reach ${where}: ${(failure as Error).message}`)
    : error;
}

/**
 * True when `error` says PostgreSQL was not reached or would not let us in: a socket error,
 * SQLSTATE class 08 (connection exception) or 28 (authorization), an unknown database
 * (3D000), a server starting or shutting down (57P03), the pool's connect timeout, or the
 * stores' UnavailableError.
 */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof UnavailableError) return true;
  const { code, message, errors } = (error ?? {}) as { code?: unknown; message?: unknown; errors?: unknown };
  if (
    typeof code === 'string' &&
    (NETWORK_CODES.has(code) || /^(08|28)/.test(code) || code === '3D000' || code === '57P03')
  )
    return true;
  if (typeof message === 'string' && /timeout exceeded when trying to connect|Connection terminated/i.test(message))
    return true;
  // Several addresses tried (IPv6 and IPv4): each one's error.
  return Array.isArray(errors) && errors.some(isConnectionFailure);
}

/** The person running the CLI, for the audit trail of what it does to the database directly. */
export function cliPrincipal(): Principal {
  const username = userInfo().username;
  return { uid: username, username, type: 'user' };
}

import { StoreError } from '../domain/errors.js';

/**
 * Why a target refused a write for its data, as PostgreSQL said it: kept on the outbox entry
 * and shown to operators, so a refusal never reads as an outage.
 */
export interface DataFailure {
  /** The error's message (a driver's message, or a store's own StoreError). */
  readonly message: string;
  /** SQLSTATE (23503: foreign key, 23505: unique, 23514: check, 23502: not null, 22xxx: a value refused); absent for a store's own refusal. */
  readonly code?: string;
  readonly constraint?: string;
  /** PostgreSQL's detail, e.g. `Key (user_id)=(u1) is not present in table "users".` */
  readonly detail?: string;
}

/** What an operator does about a write refused for its data; the same words in logs, the CLI and the admin API. */
export const DATA_FIX =
  'fix the data (e.g. run `dualwrite resync --reason ...` so the referenced rows are copied) and run `dualwrite outbox replay`';

/** The fields of a driver's error this module reads (node-postgres and PGlite name them alike). */
interface SqlErrorFields {
  readonly code?: unknown;
  readonly constraint?: unknown;
  readonly detail?: unknown;
  readonly cause?: unknown;
}

/**
 * True when PostgreSQL refused a statement because of the data it carried: SQLSTATE class 23
 * (integrity constraint violation: foreign key, unique, check, not null, exclusion) or class
 * 22 (data exception: a value it cannot take). Retrying cannot help until the data changes,
 * and the server answered, so it is not an outage. Looks through `cause` (a wrapped error).
 */
export function isDataError(error: unknown): boolean {
  const code = sqlErrorOf(error)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/** True when the target refused the write itself, for its data: a store's StoreError, or isDataError. */
export function isRefusal(error: unknown): boolean {
  return error instanceof StoreError || isDataError(error);
}

/** The failure as kept on an outbox entry: message, and SQLSTATE, constraint and detail when PostgreSQL gave them. */
export function describeFailure(error: unknown): DataFailure {
  const sql = sqlErrorOf(error);
  // A class name says what failed (NotFoundError: ...); a driver's ("error", "DatabaseError") says nothing SQLSTATE does not.
  const named = error instanceof Error && !/^(error|Error|DatabaseError)$/.test(error.name) && sql !== error;
  const message = error instanceof Error ? `${named ? `${error.name}: ` : ''}${error.message}` : String(error);
  return {
    message,
    ...(typeof sql?.code === 'string' ? { code: sql.code } : {}),
    ...(typeof sql?.constraint === 'string' ? { constraint: sql.constraint } : {}),
    ...(typeof sql?.detail === 'string' ? { detail: sql.detail } : {}),
  };
}

/** One line for people: `<message> (SQLSTATE 23503, constraint orders_user_id_fkey: Key ... is not present ...)`. */
export function failureText(failure: DataFailure): string {
  const facts = [
    ...(failure.code ? [`SQLSTATE ${failure.code}`] : []),
    ...(failure.constraint ? [`constraint ${failure.constraint}`] : []),
  ].join(', ');
  const said = [facts, failure.detail].filter(Boolean).join(': ');
  return said ? `${failure.message} (${said})` : failure.message;
}

/** Whether two failures say the same (an entry refused again for the same reason is not rewritten). */
export function sameFailure(a: DataFailure | undefined, b: DataFailure): boolean {
  return (
    a !== undefined &&
    a.message === b.message &&
    a.code === b.code &&
    a.constraint === b.constraint &&
    a.detail === b.detail
  );
}

/** The first error in the cause chain that carries an SQLSTATE (five characters), if any. */
function sqlErrorOf(error: unknown): SqlErrorFields | undefined {
  let current: unknown = error;
  // A bounded walk: a cause chain is short, and a cycle must not hang the mirror.
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const fields = current as SqlErrorFields;
    if (typeof fields.code === 'string' && /^[0-9A-Z]{5}$/.test(fields.code)) return fields;
    current = fields.cause;
  }
  return undefined;
}

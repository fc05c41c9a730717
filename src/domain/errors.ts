/**
 * The root of every error dualwrite defines, so that one `instanceof DualWriteError` tells
 * them from a driver's or the platform's. `name` is the class's name. The families, each
 * class declared in the layer that owns its concept:
 *
 * - StoreError (a store refused the input; nothing was written): ValidationError,
 *   NotFoundError, ConflictError, TransitionError.
 * - UnavailableError: a store's backend did not answer; whether the call took effect is unknown.
 * - RequestRefusedError (an operator's request refused as it stands; nothing of it took
 *   effect): FlagSourceConflictError (flags/), EvidenceRefusedError and
 *   StageChangeRefusedError (runtime/), RestoreRefusedError (postgres/).
 * - Each alone, about its own layer's work: SnapshotError (memory/); MigrationError,
 *   DatabaseUnreachableError, LeaseHeldError, PgToolError (postgres/); SqliteUnavailableError,
 *   InvalidRowError (sqlite/); FencedError, SourceReadError (dualwrite/);
 *   BackfillConflictError, RepairRunNotFoundError (verifier/); ApiError (api/); CliError (cli/).
 *
 * A mistake in what a caller passes (a bad option, an unknown store) is a TypeError, as in
 * Node's own APIs; ConfigError, a bad environment variable, is one of those and so stands
 * outside this tree.
 */
export class DualWriteError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Errors every store raises identically, so a caller (and the DualWriteStore) can tell
 * bad input from a missing record from a lost race without parsing messages.
 * Each names the input field it is about.
 */
export class StoreError extends DualWriteError {
  constructor(
    message: string,
    /** The input field the error is about, as the caller spelled it (camelCase). */
    readonly field: string,
  ) {
    super(message);
  }
}

/** The input is invalid; nothing was written. */
export class ValidationError extends StoreError {
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`, field);
  }
}

/** A record the write refers to does not exist; nothing was written. */
export class NotFoundError extends StoreError {
  constructor(field: string, value: string) {
    super(`${field}: no record with key ${JSON.stringify(value)}`, field);
  }
}

/** A record with this key already exists; nothing was written. */
export class ConflictError extends StoreError {
  constructor(field: string, value: string) {
    super(`${field}: a record with key ${JSON.stringify(value)} already exists`, field);
  }
}

/** A state change a lifecycle does not allow (a task's status, a job execution's state); nothing was written. */
export class TransitionError extends StoreError {
  constructor(
    readonly from: string,
    readonly to: string,
    field = 'status',
    subject = 'a task',
  ) {
    super(`${field}: cannot move ${subject} from ${from} to ${to}`, field);
  }
}

/**
 * A store's backend (PostgreSQL) could not be reached or did not answer, so whether the
 * call took effect is unknown. `cause` is the driver's error. Not a StoreError: it says
 * nothing about the input, and an API answers it with 503.
 */
export class UnavailableError extends DualWriteError {
  constructor(
    /** What could not be reached, e.g. "postgres". */
    readonly dependency: string,
    cause: unknown,
  ) {
    super(`${dependency} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * An operator's request the process refused as it stands (a safety rule, the evidence gate,
 * another owner of the flags, a backup that fails its checks): nothing of it took effect, and
 * the same request is refused again until what refused it changes. The API answers 409.
 */
export class RequestRefusedError extends DualWriteError {}

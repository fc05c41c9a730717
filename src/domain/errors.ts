/**
 * Errors every store raises identically, so a caller (and the DualWriteStore) can tell
 * bad input from a missing record from a lost race without parsing messages.
 * Each names the input field it is about.
 */
export class StoreError extends Error {
  constructor(
    message: string,
    /** The input field the error is about, as the caller spelled it (camelCase). */
    readonly field: string,
  ) {
    super(message);
    this.name = new.target.name;
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
export class UnavailableError extends Error {
  constructor(
    /** What could not be reached, e.g. "postgres". */
    readonly dependency: string,
    cause: unknown,
  ) {
    super(`${dependency} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'UnavailableError';
  }
}
